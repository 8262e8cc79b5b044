// Updates the status page in place from /status/<token>.json, without a reload.
// The page works without this script: it then reloads itself (<noscript> refresh).
(function () {
  "use strict";

  var root = document.getElementById("status");
  if (!root || !window.fetch) {
    return;
  }
  var ICONS = {
    done: "\u2713",
    current: "\u2026",
    retrying: "\u21bb",
    waiting: "\u2026",
    failed: "!",
    stopped: "\u00d7",
    not_started: ""
  };
  var ACTIVE = ["current", "retrying", "waiting", "failed"];
  var url = root.getAttribute("data-json");
  var first = parseInt(root.getAttribute("data-refresh"), 10);

  function byId(id) {
    return document.getElementById(id);
  }

  function setText(element, text) {
    // Only real changes: the summary is a live region, and every change is read out.
    if (element && typeof text === "string" && element.textContent !== text) {
      element.textContent = text;
    }
  }

  function showStages(stages) {
    (stages || []).forEach(function (stage) {
      var item = root.querySelector('[data-stage="' + stage.key + '"]');
      if (!item) {
        return;
      }
      item.className = "stage stage--" + stage.state;
      if (ACTIVE.indexOf(stage.state) >= 0) {
        item.setAttribute("aria-current", "step");
      } else {
        item.removeAttribute("aria-current");
      }
      setText(item.querySelector(".stage__icon"), ICONS[stage.state] || "");
      setText(item.querySelector(".stage__state"), stage.words);
    });
  }

  function showPayLink(address) {
    // Only Stripe's http(s) address of the open invoice; anything else hides the link.
    var shown = typeof address === "string" && /^https?:\/\//.test(address);
    if (shown && byId("pay-link").getAttribute("href") !== address) {
      byId("pay-link").setAttribute("href", address);
    }
    byId("pay").hidden = !shown;
  }

  function apply(data) {
    setText(byId("headline"), data.headline);
    setText(byId("message"), data.message);
    if (data.headline) {
      document.title = data.headline + document.title.replace(/^.*?( \u2013 )/, "$1");
    }
    showStages(data.stages);
    if (data.state) {
      root.setAttribute("data-state", data.state);
    }
    byId("open-panel").hidden = data.sign_in !== "open";
    byId("sign-in-note").hidden = data.sign_in !== "expired";
    byId("password-note").hidden = data.sign_in !== "password";
    showPayLink(data.pay_url);
    byId("refresh").hidden = !data.refresh_seconds;
    setText(byId("checked"), "Last checked at " + new Date().toLocaleTimeString() + ".");
  }

  function schedule(seconds) {
    if (seconds > 0) {
      window.setTimeout(poll, seconds * 1000);
    }
  }

  function poll() {
    window
      .fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" })
      .then(function (response) {
        return response.json().then(function (data) {
          return { ok: response.ok, data: data };
        });
      })
      .then(function (answer) {
        if (answer.ok || answer.data.headline) {
          apply(answer.data);
        }
        schedule(answer.data.refresh_seconds);
      })
      .catch(function () {
        // Offline or the server is restarting: keep what is shown, look again later.
        schedule(Math.max(first || 0, 30));
      });
  }

  schedule(first);
})();
