// Rapport behaviour. Everything here enhances pages that already work without JavaScript.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Every htmx request carries the session's CSRF token.
  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token) {
      event.detail.headers["x-csrf-token"] = token;
    }
  });

  // Forms with data-confirm ask before submitting (the server asks again without JS).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var message = form && form.getAttribute && form.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  }, true);

  // Close the user menu when clicking elsewhere.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.dropdown[open]").forEach(function (d) {
      if (!d.contains(event.target)) {
        d.removeAttribute("open");
      }
    });
  });

  // Select the token secret on focus so it is easy to copy.
  document.addEventListener("focusin", function (event) {
    if (event.target && event.target.classList && event.target.classList.contains("secret")) {
      event.target.select();
    }
  });
})();
