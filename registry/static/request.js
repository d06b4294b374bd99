// certledger verify page, "request a presentation": the bank makes a one-time request
// (POST /verify/requests), shows its QR code (a link to the holder page), and polls for the answer,
// which the registry verified against the request when the holder sent it. `?presentation=<nonce>`
// (the QR code on the holder page) shows that answer. No dependencies.
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var CHECKS = {
    format: "格式", integrity: "完整性", issuer: "签发机构", anchor: "链上存证", status: "状态",
    validity: "有效期", data: "数据", usage: "用途", holder: "持有人"
  };
  var MARK = { passed: "✓", failed: "✗", skipped: "–" };
  var timer = null;

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = text;
    return n;
  }
  function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); return n; }
  function bi(parent, zh, en) {
    parent.appendChild(el("span", null, zh)).setAttribute("lang", "zh");
    parent.appendChild(document.createTextNode(" "));
    parent.appendChild(el("span", null, en)).setAttribute("lang", "en");
    return parent;
  }

  function showResult(result) {
    var verdict = clear($("presentation-verdict"));
    verdict.className = "verdict " + (result.valid ? "valid" : "invalid");
    verdict.dataset.valid = String(result.valid);
    bi(verdict, result.valid ? "✓ 出示有效" : "✗ 出示无效", result.valid ? "✓ the presentation is valid" : "✗ the presentation is not valid");
    var body = clear($("presentation-checks").querySelector("tbody"));
    result.credentials.forEach(function (r, i) {
      r.checks.forEach(function (c) {
        var tr = el("tr", "check " + c.status);
        tr.dataset.check = c.name;
        tr.dataset.status = c.status;
        tr.dataset.credential = String(i);
        tr.appendChild(el("td", "mono", (r.credential && r.credential.type) || "#" + (i + 1)));
        bi(tr.appendChild(el("th")), CHECKS[c.name] || c.name, c.name);
        tr.appendChild(el("td", "status", MARK[c.status] || c.status));
        tr.appendChild(el("td", "reason", c.reason || ""));
        body.appendChild(tr);
      });
    });
    $("presentation-result").hidden = false;
  }

  function poll(nonce) {
    fetch("/verify/requests/" + encodeURIComponent(nonce) + "/result").then(function (r) {
      return r.json().then(function (body) {
        var st = $("request-state");
        if (!r.ok) {
          clearInterval(timer);
          st.dataset.state = "expired";
          bi(clear(st), "请求已失效", (body.error && body.error.message) || "the request expired");
          return;
        }
        if (body.state === "answered") {
          clearInterval(timer);
          st.dataset.state = "answered";
          bi(clear(st), "已收到出示", "presentation received");
          showResult(body.result);
        }
      });
    }).catch(function () { /* try again on the next tick */ });
  }

  function makeRequest() {
    var err = $("request-error");
    err.hidden = true;
    fetch("/verify/requests", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        audience: $("req-audience-input").value.trim(),
        purpose: $("req-purpose-input").value.trim(),
        ttlSeconds: parseInt($("req-ttl-input").value, 10)
      })
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error((body.error && body.error.message) || r.statusText);
        $("request-qr").src = "data:image/svg+xml;base64," + body.qrSvg;
        $("request-link").href = body.holderLink;
        $("request-link").textContent = body.holderLink;
        $("request-expires").textContent = body.request.expires;
        $("request-made").hidden = false;
        $("request-made").dataset.nonce = body.request.nonce;
        $("presentation-result").hidden = true;
        if (timer) clearInterval(timer);
        timer = setInterval(function () { poll(body.request.nonce); }, 1000);
      });
    }).catch(function (e) {
      err.textContent = "无法生成请求 / cannot make the request: " + e.message;
      err.hidden = false;
    });
  }

  function start() {
    $("request-button").addEventListener("click", makeRequest);
    var nonce = $("app").dataset.presentation;
    if (nonce) {
      fetch("/verify/requests/" + encodeURIComponent(nonce) + "/result").then(function (r) {
        return r.json().then(function (body) {
          if (r.ok && body.state === "answered") return showResult(body.result);
          var box = $("request-error");
          box.textContent = r.ok ? "尚未出示 / not presented yet" : "出示已失效 / " + ((body.error && body.error.message) || "expired");
          box.hidden = false;
          $("request-panel").open = true;
        });
      });
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
