// certledger verify page: drop a credential (and optionally a dataset), POST it to /verify/check,
// show each check. A QR link (?credential=<id>) asks /verify/credential/<id>. No dependencies.
(function () {
  "use strict";

  var TYPES = {
    BusinessLicence: ["营业执照", "Business licence"],
    OperatingPermit: ["经营许可证", "Operating permit"],
    DataAssetCertificate: ["数据资产凭证", "Data asset certificate"]
  };
  var STATUS = {
    passed: ["✓", "通过", "passed"],
    failed: ["✗", "未通过", "failed"],
    skipped: ["–", "跳过", "skipped"]
  };
  var REG_STATUS = {
    valid: ["有效", "valid (not revoked or suspended)"],
    revoked: ["已撤销", "revoked"],
    suspended: ["已暂停", "suspended"],
    pending: ["待上链", "not yet anchored"],
    unknown: ["未知", "unknown"]
  };
  var FIELD = {
    licenceNumber: "证照编号", enterpriseName: "企业名称", unifiedSocialCreditCode: "统一社会信用代码",
    enterpriseType: "企业类型", legalRepresentative: "法定代表人", registeredCapital: "注册资本",
    amount: "金额", currency: "币种", dateOfEstablishment: "成立日期", businessScope: "经营范围",
    address: "住所", registrationAuthority: "登记机关", permitNumber: "许可证编号", permitType: "许可类型",
    permittedActivities: "许可项目", issuingDepartment: "发证部门", assetId: "资产编号", assetName: "资产名称",
    holderName: "持有人名称", dataProvider: "数据提供方", dataCategory: "数据类别", classificationLevel: "分级",
    periodCovered: "覆盖期间", from: "起", to: "止", recordCount: "记录数", datasetDigest: "数据集摘要",
    digestAlgorithm: "摘要算法", valuation: "估值", method: "方法", authorisedUses: "授权用途",
    relyingParty: "依赖方", name: "名称", purpose: "用途", until: "截至"
  };

  var $ = function (id) { return document.getElementById(id); };
  var state = { credential: null, dataset: null, run: 0, inflight: null };

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = text;
    return n;
  }
  function bi(parent, zh, en) {  // <span lang=zh>zh</span> <span lang=en>en</span>
    parent.appendChild(el("span", null, zh)).setAttribute("lang", "zh");
    parent.appendChild(document.createTextNode(" "));
    parent.appendChild(el("span", null, en)).setAttribute("lang", "en");
    return parent;
  }
  function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); return n; }

  // -- files -------------------------------------------------------------------------------
  function chose(kind, file) {
    state[kind] = file || null;
    var zone = $("drop-" + kind);
    zone.classList.toggle("has-file", !!file);
    $(kind + "-name").textContent = file ? file.name + " (" + size(file.size) + ")" : "";
    if (kind === "dataset") $("clear-dataset").hidden = !file;
    if (state.credential) verify();
  }
  function size(n) {
    if (n >= 1048576) return (n / 1048576).toFixed(1) + " MiB";
    if (n >= 1024) return (n / 1024).toFixed(1) + " KiB";
    return n + " B";
  }
  function wireZone(kind) {
    var zone = $("drop-" + kind), input = $(kind + "-file");
    input.addEventListener("change", function () { chose(kind, input.files[0]); });
    ["dragenter", "dragover"].forEach(function (t) {
      zone.addEventListener(t, function (ev) { ev.preventDefault(); zone.classList.add("over"); });
    });
    ["dragleave", "dragend"].forEach(function (t) {
      zone.addEventListener(t, function () { zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (ev) {
      ev.preventDefault();
      zone.classList.remove("over");
      var files = ev.dataTransfer && ev.dataTransfer.files;
      if (!files || !files.length) return;
      try { input.files = files; } catch (e) { input.value = ""; }  // keep the native input in step
      chose(kind, files[0]);
    });
  }

  // -- requests ----------------------------------------------------------------------------
  function verify() {
    if (!state.credential) {
      showError(["请选择凭证文件", "Choose a credential file"], "");
      return;
    }
    var fd = new FormData();
    fd.append("credential", state.credential, state.credential.name || "credential.json");
    if (state.dataset) fd.append("dataset", state.dataset, state.dataset.name || "dataset");
    ["relyingParty", "purpose", "at"].forEach(function (name) {
      var v = document.querySelector("[name=" + name + "]").value.trim();
      if (v) fd.append(name, v);
    });
    request(fetch("/verify/check", { method: "POST", body: fd }));
  }

  function request(promise) {
    var token = {};
    state.inflight = token;
    $("busy").hidden = false;
    $("verify-button").disabled = true;
    promise.then(function (r) {
      return r.json().catch(function () { return null; }).then(function (body) { return { r: r, body: body }; });
    }).then(function (x) {
      if (state.inflight !== token) return;  // a newer request superseded this one
      if (!x.r.ok || !x.body) {
        var err = (x.body && x.body.error) || {};
        showError(errorTitle(x.r.status, err.code), err.message || ("HTTP " + x.r.status));
      } else {
        render(x.body);
      }
    }, function (e) {
      if (state.inflight !== token) return;
      showError(["无法连接登记系统", "Cannot reach the registry"], String(e));
    }).then(function () {
      if (state.inflight !== token) return;
      state.inflight = null;
      $("busy").hidden = true;
      $("verify-button").disabled = false;
    });
  }

  function errorTitle(status, code) {
    if (status === 404) return ["未找到", "Not found"];
    if (status === 413) return ["文件过大", "File too large"];
    if (status === 415) return ["格式不支持", "Unsupported upload"];
    if (status === 409) return ["尚不可核验", "Not verifiable yet"];
    if (status >= 500) return ["登记系统出错", "Registry error"];
    return ["无法核验", "Cannot check this file"];
  }

  function showError(title, message) {
    $("result").hidden = true;
    var box = $("error");
    bi(clear($("error-title")), title[0], title[1]);
    $("error-message").textContent = message;
    box.hidden = false;
    box.dataset.run = String(++state.run);
  }

  // -- rendering ---------------------------------------------------------------------------
  function render(res) {
    $("error").hidden = true;
    var result = $("result");
    var cred = res.credential || { id: res.id, type: res.type, issuer: res.issuer, subject: null };
    var summaryOnly = !!res.summaryOnly;

    var verdict = clear($("verdict"));
    if (summaryOnly && (res.status === "revoked" || res.status === "suspended")) {
      verdict.className = "verdict invalid";  // whatever the file says, the registry has withdrawn it
      verdict.dataset.valid = "false";
      verdict.appendChild(el("span", "mark", "✗"));
      var w = REG_STATUS[res.status];
      bi(verdict, w[0], w[1].toUpperCase());
    } else if (summaryOnly) {
      verdict.className = "verdict neutral";
      verdict.dataset.valid = "";
      bi(verdict, "需持有人出示凭证文件", "The holder must present the certificate file");
    } else {
      verdict.className = "verdict " + (res.valid ? "valid" : "invalid");
      verdict.dataset.valid = String(!!res.valid);
      verdict.appendChild(el("span", "mark", res.valid ? "✓" : "✗"));
      if (res.valid) bi(verdict, "有效", "VALID");
      else bi(verdict, "无效", "NOT VALID");
    }

    var t = TYPES[cred.type];
    var typeCell = clear($("cred-type"));
    if (t) bi(typeCell, t[0], t[1]); else typeCell.textContent = cred.type || "—";
    $("cred-issuer").textContent = cred.issuer || "—";
    var subj = [res.subjectName, cred.subject].filter(Boolean).join(" · ");
    if (summaryOnly) bi(clear($("cred-subject")), "不公开", "not public");
    else $("cred-subject").textContent = subj || "—";
    $("cred-id").textContent = cred.id || "—";

    document.querySelectorAll(".status-only").forEach(function (n) { n.hidden = !summaryOnly; });
    $("summary-only-note").hidden = !summaryOnly;
    if (summaryOnly) {
      var st = REG_STATUS[res.status] || [res.status, res.status];
      var cell = clear($("cred-status"));
      cell.dataset.status = res.status;
      bi(cell, st[0], st[1]);
    }

    $("checks").hidden = summaryOnly;
    var rows = {};
    document.querySelectorAll("#checks tr.check").forEach(function (tr) { rows[tr.dataset.check] = tr; });
    (res.checks || []).forEach(function (c) {
      var tr = rows[c.name];
      if (!tr) return;
      var s = STATUS[c.status] || ["?", c.status, c.status];
      tr.className = "check " + c.status;
      tr.dataset.status = c.status;
      tr.querySelector(".icon").textContent = s[0];
      bi(clear(tr.querySelector(".status")), s[1], s[2]);
      tr.querySelector(".reason").textContent = c.reason;
    });

    renderFields(summaryOnly ? null : res);
    $("fields-warning").hidden = summaryOnly || !!res.valid || $("fields").hidden;
    $("trust").textContent = res.trust || "";
    result.hidden = false;
    result.dataset.valid = summaryOnly ? "" : String(!!res.valid);
    result.dataset.source = res.source || "";
    result.dataset.run = String(++state.run);
  }

  function label(path) {
    var tokens = path.split("/").slice(2).map(function (t) { return t.replace(/~1/g, "/").replace(/~0/g, "~"); });
    var zh = tokens.map(function (t) { return /^\d+$/.test(t) ? "#" + (Number(t) + 1) : (FIELD[t] || t); }).join(" · ");
    var td = el("td");
    td.appendChild(el("span", null, zh)).setAttribute("lang", "zh");
    td.appendChild(el("span", "path", tokens.join(" / ")));
    return td;
  }

  function renderFields(res) {
    var table = $("fields"), body = clear(table.querySelector("tbody"));
    if (!res || (!(res.disclosed || []).length && !(res.redacted || []).length)) { table.hidden = true; return; }
    table.hidden = false;
    var items = (res.disclosed || []).map(function (f) { return { path: f.path, value: f.value, redacted: false }; });
    (res.redacted || []).forEach(function (p) { items.push({ path: p, redacted: true }); });
    items.forEach(function (it) {
      var tr = el("tr", it.redacted ? "redacted" : "disclosed");
      tr.dataset.path = it.path;
      tr.appendChild(label(it.path));
      var v = el("td");
      if (it.redacted) {
        var tag = el("span", "tag redacted");
        bi(tag, "已隐去", "redacted");
        v.appendChild(tag);
        // FORMAT.md §3.3: the issuer's hash covers each redacted field's path, so the path is
        // proven once integrity passed; otherwise it is only what the holder's file says.
        var how = el("span", "muted proof-note");
        if (res.redactionProven) bi(how, "（路径已由签发方哈希证实）", "(path proven by the issuer's hash)");
        else bi(how, "（路径仅为持有人所称，未经证实）", "(path is the holder's claim, not proven)");
        how.dataset.proven = String(!!res.redactionProven);
        v.appendChild(document.createTextNode(" "));
        v.appendChild(how);
      } else {
        v.textContent = it.value === null ? "null" : String(it.value);
      }
      tr.appendChild(v);
      body.appendChild(tr);
    });
  }

  // -- start -------------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", function () {
    wireZone("credential");
    wireZone("dataset");
    // a file dropped anywhere else must not navigate away from the page
    ["dragover", "drop"].forEach(function (t) {
      window.addEventListener(t, function (ev) { ev.preventDefault(); });
    });
    $("clear-dataset").addEventListener("click", function () {
      $("dataset-file").value = "";
      chose("dataset", null);
    });
    $("verify-form").addEventListener("submit", function (ev) { ev.preventDefault(); verify(); });

    var id = new URLSearchParams(location.search).get("credential");
    if (id) request(fetch("/verify/credential/" + encodeURIComponent(id)));
  });
})();
