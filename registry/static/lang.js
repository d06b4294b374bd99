/* certledger pages' zh / en switch — the one implementation, shared by the verify, holder and
   trace pages. Buttons `.langs button[data-lang=both|zh|en]` set <html class="lang-…"> (CSS hides
   the other language's [lang] elements) and remember the choice in localStorage "certledger-lang".
   No dependencies; loaded before the page's own script. */
(function () {
  "use strict";
  var KEY = "certledger-lang";
  var LANGS = { both: "zh-Hans-CN", zh: "zh-Hans-CN", en: "en" };

  function set(lang) {
    if (!LANGS[lang]) return;
    var root = document.documentElement;
    root.classList.remove("lang-both", "lang-zh", "lang-en");
    root.classList.add("lang-" + lang);
    root.lang = LANGS[lang];
    document.querySelectorAll(".langs button").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.lang === lang));
    });
    try { localStorage.setItem(KEY, lang); } catch (e) { /* private mode */ }
  }

  function current() {
    var root = document.documentElement;
    return root.classList.contains("lang-en") ? "en" : root.classList.contains("lang-zh") ? "zh" : "both";
  }

  function start() {
    var saved = null;
    try { saved = localStorage.getItem(KEY); } catch (e) { /* private mode */ }
    if (LANGS[saved]) set(saved);
    document.querySelectorAll(".langs button").forEach(function (b) {
      b.addEventListener("click", function () { set(b.dataset.lang); });
    });
  }

  window.certledgerLang = { set: set, current: current };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
