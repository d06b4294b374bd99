// certledger holder page: load a holder copy and the holder key (key.json of certledger-wallet),
// tick what to disclose, load the bank's request, then sign and send. The registry redacts and
// returns the digest to sign (/holder/prepare); the key signs it here (holder-crypto.js) and never
// leaves the browser. The signed presentation goes to the request (/verify/requests/<nonce>/...),
// which verifies it at once; a QR code links to the result until the request expires.
(function () {
  "use strict";
  var KEPT = {  // verifier KEPT_PATHS (the server refuses the rest by name anyway)
    "/credentialSubject/unifiedSocialCreditCode": 1, "/credentialSubject/licenceIdentifier": 1,
    "/credentialSubject/longTermValidity": 1, "/credentialSubject/holderCodeType": 1,
    "/credentialSubject/id": 1
  };
  var NONCE = /^0x[0-9a-f]{32,128}$/;
  var $ = function (id) { return document.getElementById(id); };
  var state = { credential: null, key: null, request: null };

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = text;
    return n;
  }
  function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); return n; }
  function fail(zh, en) {
    var box = $("holder-error"), msg = clear($("holder-error-message"));
    msg.appendChild(el("span", null, zh)).setAttribute("lang", "zh");
    msg.appendChild(document.createTextNode(" "));
    msg.appendChild(el("span", null, en)).setAttribute("lang", "en");
    box.hidden = false;
  }
  function ok() { $("holder-error").hidden = true; }
  function busy(on) { $("holder-busy").hidden = !on; }
  function ready() {
    $("present-button").disabled = !(state.credential && state.key && state.request);
  }
  function escape(token) { return token.replace(/~/g, "~0").replace(/\//g, "~1"); }

  function leaves(value, path, out) {  // (JSON Pointer, value) of every leaf, as the verifier flattens
    if (Array.isArray(value)) {
      if (!value.length) out.push([path, value]);
      value.forEach(function (v, i) { leaves(v, path + "/" + i, out); });
    } else if (value !== null && typeof value === "object") {
      var keys = Object.keys(value);
      if (!keys.length) out.push([path, value]);
      keys.forEach(function (k) { leaves(value[k], path + "/" + escape(k), out); });
    } else {
      out.push([path, value]);
    }
    return out;
  }

  function readJson(file, then, what) {
    var reader = new FileReader();
    reader.onload = function () {
      var value;
      try { value = JSON.parse(reader.result); } catch (e) {
        return fail(what[0] + "不是有效的 JSON。", what[1] + " is not valid JSON.");
      }
      then(value);
    };
    reader.onerror = function () { fail("无法读取" + what[0] + "。", "cannot read the " + what[1] + "."); };
    reader.readAsText(file);
  }

  function showLeaves() {
    var body = clear($("leaves").querySelector("tbody"));
    var redacted = (state.credential.proof && state.credential.proof.redactedDigests) || {};
    leaves(state.credential.credentialSubject || {}, "/credentialSubject", []).forEach(function (leaf) {
      var tr = el("tr"), box = el("input");
      box.type = "checkbox";
      box.checked = true;
      box.dataset.path = leaf[0];
      box.disabled = !!KEPT[leaf[0]];
      box.setAttribute("aria-label", leaf[0]);
      tr.appendChild(el("td")).appendChild(box);
      tr.appendChild(el("td", "mono", leaf[0].replace("/credentialSubject/", "")));
      tr.appendChild(el("td", null, typeof leaf[1] === "string" ? leaf[1] : JSON.stringify(leaf[1])));
      body.appendChild(tr);
    });
    Object.keys(redacted).forEach(function (path) {
      var tr = el("tr", "redacted");
      tr.appendChild(el("td", null, "—"));
      tr.appendChild(el("td", "mono", path.replace("/credentialSubject/", "")));
      tr.appendChild(el("td", null, "(已隐去 redacted)"));
      body.appendChild(tr);
    });
    $("disclose").hidden = false;
  }

  function loadCredential(doc) {
    if (!doc || typeof doc !== "object" || !doc.proof || !doc.credentialSubject) {
      return fail("这不是登记系统发出的凭证（缺少 proof）。", "this is not a holder copy from the registry (it has no proof).");
    }
    ok();
    state.credential = doc;
    showLeaves();
    ready();
  }

  function loadKey(key) {
    if (!key || key.suite !== "secp256k1" || typeof key.privateKey !== "string") {
      return fail("仅支持 secp256k1 持有人密钥；SM2 密钥请使用 certledger-wallet present。",
        "only secp256k1 holder keys sign here; for an SM2 key use certledger-wallet present.");
    }
    var id;
    try { id = window.certledgerHolderCrypto.holderId(key.privateKey); } catch (e) {
      return fail("密钥文件无效：" + e.message, "the key file is not valid: " + e.message);
    }
    var named = state.credential && state.credential.credentialSubject.id;
    if (named && named !== id) {
      return fail("此密钥不是凭证绑定的持有人密钥。", "this key is not the holder key the credential is bound to.");
    }
    ok();
    state.key = { privateKey: key.privateKey, holderId: id };
    ready();
  }

  function showRequest(req) {
    state.request = req;
    $("req-audience").textContent = req.audience;
    $("req-purpose").textContent = req.purpose;
    $("req-expires").textContent = req.expires;
    $("request-summary").hidden = false;
    ok();
    ready();
  }

  function fetchRequest(nonce) {
    return fetch("/verify/requests/" + encodeURIComponent(nonce)).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error((body.error && body.error.message) || r.statusText);
        showRequest(body);
      });
    }).catch(function (e) { fail("无法载入请求：" + e.message, "cannot load the request: " + e.message); });
  }

  function loadRequestText() {
    return loadRequestFrom($("request-text").value.trim());
  }

  function loadRequestFrom(text) {
    var m = text.match(/[?&]request=(0x[0-9a-f]+)/);
    if (m) return fetchRequest(m[1]);
    if (NONCE.test(text)) return fetchRequest(text);
    var req;
    try { req = JSON.parse(text); } catch (e) {
      return fail("请求不是有效的 JSON 或链接。", "the request is neither valid JSON nor a request link.");
    }
    if (!req || req.type !== "CertledgerPresentationRequest" || !NONCE.test(req.nonce || "")) {
      return fail("这不是核验请求。", "this is not a presentation request.");
    }
    return fetchRequest(req.nonce);  // the request as the bank made it, not as pasted
  }

  // -- the bank's QR code: from a picture, or from the camera (holder-scan.js: jsQR) -------------
  function decodeCanvas(source, width, height) {
    var canvas = $("scan-canvas"), g;
    canvas.width = width;
    canvas.height = height;
    g = canvas.getContext("2d", { willReadFrequently: true });
    g.drawImage(source, 0, 0, width, height);
    var image = g.getImageData(0, 0, width, height);
    return window.certledgerHolderScan.decode(image.data, width, height);
  }

  function scanned(text) {
    $("request-text").value = text;
    loadRequestFrom(text);
  }

  function scanImage(file) {
    createImageBitmap(file).then(function (bitmap) {
      var text = decodeCanvas(bitmap, bitmap.width, bitmap.height);
      if (!text) return fail("图片中没有可识别的二维码。", "no QR code could be read in that picture.");
      scanned(text);
    }).catch(function () { fail("无法读取该图片。", "cannot read that picture."); });
  }

  var camera = null;
  function stopCamera() {
    if (camera) camera.getTracks().forEach(function (t) { t.stop(); });
    camera = null;
    $("scan-video").hidden = true;
  }

  function scanCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return fail("此浏览器无法使用摄像头：请选择二维码图片或粘贴链接。",
        "this browser cannot use a camera: choose a picture of the QR code or paste its link.");
    }
    var video = $("scan-video"), started = Date.now();
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } }).then(function (stream) {
      camera = stream;
      video.srcObject = stream;
      video.hidden = false;
      return video.play();
    }).then(function () {
      (function look() {
        if (!camera) return;
        if (video.videoWidth) {
          var text = decodeCanvas(video, video.videoWidth, video.videoHeight);
          if (text) { stopCamera(); return scanned(text); }
        }
        if (Date.now() - started > 60000) {
          stopCamera();
          return fail("一分钟内未识别到二维码。", "no QR code was read within a minute.");
        }
        setTimeout(look, 150);
      })();
    }).catch(function (e) {
      stopCamera();
      fail("无法打开摄像头：" + e.message, "cannot open the camera: " + e.message);
    });
  }

  function post(url, body) {
    return fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
      .then(function (r) {
        return r.json().then(function (out) {
          if (!r.ok) throw new Error((out.error && out.error.message) || r.statusText);
          return out;
        });
      });
  }

  function present() {
    var redact = [];
    document.querySelectorAll("#leaves input[type=checkbox]").forEach(function (box) {
      if (!box.checked && !box.disabled) redact.push(box.dataset.path);
    });
    busy(true);
    ok();
    post("/holder/prepare", {
      credentials: [state.credential], redact: [redact], request: state.request, holder: state.key.holderId
    }).then(function (prepared) {
      var p = prepared.presentation;
      p.proof.proofValue = window.certledgerHolderCrypto.sign(prepared.digest, state.key.privateKey);
      return post("/verify/requests/" + encodeURIComponent(state.request.nonce) + "/presentation", p)
        .then(function (answer) { shown(p, answer); });
    }).catch(function (e) {
      fail("出示失败：" + e.message, "the presentation failed: " + e.message);
    }).then(function () { busy(false); });
  }

  function shown(presentation, answer) {
    var verdict = clear($("presented-verdict"));
    verdict.className = "verdict " + (answer.result.valid ? "valid" : "invalid");
    verdict.dataset.valid = String(answer.result.valid);
    verdict.appendChild(el("span", null, answer.result.valid ? "✓ 请求方核验通过" : "✗ 请求方核验未通过")).setAttribute("lang", "zh");
    verdict.appendChild(document.createTextNode(" "));
    verdict.appendChild(el("span", null, answer.result.valid ? "✓ the requester's check passed" : "✗ the requester's check failed")).setAttribute("lang", "en");
    $("presented-qr").src = "data:image/svg+xml;base64," + answer.qrSvg;
    $("presented-qr").dataset.link = answer.resultLink;
    $("presented-expires").textContent = state.request.expires;
    var blob = new Blob([JSON.stringify(presentation, null, 2)], { type: "application/json" });
    $("presented-download").href = URL.createObjectURL(blob);
    $("presented").hidden = false;
  }

  function start() {
    $("holder-credential-file").addEventListener("change", function (e) {
      var f = e.target.files[0];
      if (f) { $("holder-credential-name").textContent = f.name; readJson(f, loadCredential, ["凭证文件", "credential file"]); }
    });
    $("key-file").addEventListener("change", function (e) {
      var f = e.target.files[0];
      if (f) { $("key-name").textContent = f.name; readJson(f, loadKey, ["密钥文件", "key file"]); }
    });
    $("load-request").addEventListener("click", loadRequestText);
    $("scan-camera").addEventListener("click", scanCamera);
    $("qr-image").addEventListener("change", function (e) { if (e.target.files[0]) scanImage(e.target.files[0]); });
    $("present-button").addEventListener("click", present);
    var nonce = $("holder-app").dataset.request;
    if (nonce) fetchRequest(nonce);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
