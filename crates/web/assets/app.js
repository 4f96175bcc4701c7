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

  // Live job progress: a list marked data-live-jobs (its value: the URL of the list
  // fragment) follows `job.progress` events. Known rows update in place; a job the page
  // does not show yet, or one that stopped running (attempts, errors and times change),
  // reloads the fragment. EventSource reconnects by itself after network trouble.
  function liveJobs(list) {
    var source = null;
    var loading = false;
    var again = false;

    function reload() {
      if (loading) {
        again = true;
        return;
      }
      loading = true;
      fetch(list.getAttribute("data-live-jobs"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          // A redirect means the session ended: leave the page as it is.
          if (response.ok && !response.redirected) {
            return response.text().then(function (html) { list.innerHTML = html; });
          }
        })
        .catch(function () {})
        .then(function () {
          loading = false;
          if (again) {
            again = false;
            reload();
          }
        });
    }

    function update(event) {
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      var row = null;
      list.querySelectorAll("[data-job-id]").forEach(function (r) {
        if (r.getAttribute("data-job-id") === String(data.job_id)) {
          row = r;
        }
      });
      if (!row) {
        if (list.hasAttribute("data-first-page")) {
          reload();
        }
        return;
      }
      var percent = Math.round(Math.max(0, Math.min(1, Number(data.progress) || 0)) * 100);
      var bar = row.querySelector('[data-field="progress"]');
      if (bar) {
        bar.value = percent;
        bar.textContent = percent + "%";
      }
      var text = row.querySelector('[data-field="percent"]');
      if (text) {
        text.textContent = percent + "%";
      }
      var status = row.querySelector('[data-field="status"]');
      if (status && data.status) {
        status.setAttribute("data-status", data.status);
        status.textContent = list.getAttribute("data-status-" + data.status) || data.status;
      }
      var message = row.querySelector('[data-field="message"]');
      if (message && data.message !== undefined) {
        message.textContent = data.message || "";
      }
      if (data.status !== "running") {
        reload();
      }
    }

    function open() {
      if (source || typeof window.EventSource !== "function") {
        return;
      }
      source = new EventSource("/api/v1/events");
      source.addEventListener("job.progress", update);
    }

    function close() {
      if (source) {
        source.close();
        source = null;
      }
    }

    window.addEventListener("pagehide", close);
    window.addEventListener("pageshow", function (event) {
      // Back from the back-forward cache: listen again and catch up on what was missed.
      if (event.persisted) {
        open();
        reload();
      }
    });
    open();
  }

  function startLiveJobs() {
    var list = document.querySelector("[data-live-jobs]");
    if (list) {
      liveJobs(list);
    }
  }

  // The header's bell and approvals count follow `notification` events, which carry
  // the user's unread and waiting counts.
  function startLiveCounts() {
    var unread = document.querySelector("[data-unread]");
    if (!unread || typeof window.EventSource !== "function") {
      return;
    }
    var inbox = document.querySelector("[data-inbox]");
    var source = new EventSource("/api/v1/events");
    source.addEventListener("notification", function (event) {
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (typeof data.unread === "number") {
        unread.textContent = String(data.unread);
      }
      if (inbox && typeof data.inbox === "number") {
        inbox.textContent = String(data.inbox);
      }
    });
    window.addEventListener("pagehide", function () {
      source.close();
    });
  }

  function start() {
    startLiveJobs();
    startLiveCounts();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();

// The header search's suggestions close on Escape and on a click elsewhere.
(function () {
  "use strict";
  function clear() {
    var box = document.getElementById("search-suggest");
    if (box) {
      box.innerHTML = "";
    }
  }
  // Arrow keys move between the input and the suggestions; Escape closes them.
  document.addEventListener("keydown", function (event) {
    var inSearch = event.target && event.target.closest && event.target.closest(".header-search");
    if (!inSearch) {
      return;
    }
    if (event.key === "Escape") {
      clear();
      var input = inSearch.querySelector("input[type=search]");
      if (input) {
        input.focus();
      }
      return;
    }
    if (event.key !== "ArrowDown" && event.key !== "ArrowUp") {
      return;
    }
    var items = Array.prototype.slice.call(inSearch.querySelectorAll("#search-suggest a"));
    if (!items.length) {
      return;
    }
    var at = items.indexOf(document.activeElement);
    var next = event.key === "ArrowDown" ? at + 1 : at - 1;
    if (next < 0) {
      var field = inSearch.querySelector("input[type=search]");
      if (field) {
        field.focus();
      }
    } else if (next < items.length) {
      items[next].focus();
    }
    event.preventDefault();
  });
  document.addEventListener("click", function (event) {
    if (!(event.target && event.target.closest && event.target.closest(".header-search"))) {
      clear();
    }
  });
})();
