// The admin UI's only script: a live Markdown preview in the editor and confirmations before
// irreversible-looking actions. Everything works without it (the editor has a Preview button).
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf-token"]');
  var token = csrf ? csrf.getAttribute("content") : "";

  document.querySelectorAll("textarea[data-preview]").forEach(function (area) {
    var target = document.getElementById(area.getAttribute("data-preview"));
    if (!target) return;
    var timer = null;
    area.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        fetch("/admin/kb/preview", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
          body: JSON.stringify({ body: area.value })
        }).then(function (response) {
          return response.ok ? response.json() : null;
        }).then(function (data) {
          if (data) target.innerHTML = data.html; // server-rendered, raw HTML in the text escaped
        }).catch(function () { /* the Preview button still works */ });
      }, 400);
    });
  });

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
})();
