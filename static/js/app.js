// Small progressive enhancements; every page works without this file.
(function () {
  "use strict";

  // htmx swaps nothing when a request fails: say so instead of failing silently. A failed
  // list refresh (the every-10-seconds poll) is only reported once until one succeeds.
  var pollFailed = false;

  function report(event) {
    var region = document.getElementById("messages");
    var config = event.detail && event.detail.requestConfig;
    var isPoll = config && config.verb === "get";
    if (!region || (isPoll && pollFailed)) {
      return;
    }
    if (isPoll) {
      pollFailed = true;
    }
    var message = document.createElement("p");
    message.className = "message message-error";
    message.textContent = region.getAttribute("data-request-failed");
    region.replaceChildren(message);
  }

  // A 429 from a dashboard action carries the list and the message saying when to try
  // again: swap it in like a success instead of reporting a failed request.
  document.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail && event.detail.xhr && event.detail.xhr.status === 429) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // The workspace switcher submits itself when a workspace is chosen (its button stays for
  // keyboards and for browsers without this file).
  document.addEventListener("change", function (event) {
    var form = event.target.form;
    if (form && form.hasAttribute("data-auto-submit")) {
      form.submit();
    }
  });

  // --- the overview's live list ---------------------------------------------------------
  // The poll names the version it shows; the server answers 304 (nothing to swap) while
  // nothing changed, so an idle tab costs a few hundred bytes a refresh.
  function isList(elt) {
    return elt && elt.id === "account-list";
  }

  // With the versions of the rows it shows, a page that holds the same rows gets only
  // those that changed (X-Overview-Delta), put in place here.
  function shownVersions(list) {
    var totals = list.querySelector("#totals");
    var rows = [];
    list.querySelectorAll("[data-v]").forEach(function (row) {
      if (row.id !== "totals") {
        rows.push(row.getAttribute("data-v"));
      }
    });
    return [list.getAttribute("data-layout") || "", totals ? totals.getAttribute("data-v") : "", rows.join(",")].join(";");
  }

  document.addEventListener("htmx:configRequest", function (event) {
    var elt = event.detail.elt;
    if (isList(elt) && event.detail.verb === "get" && elt.getAttribute("data-etag")) {
      event.detail.headers["If-None-Match"] = elt.getAttribute("data-etag");
      event.detail.headers["X-Overview-Rows"] = shownVersions(elt);
    }
  });

  function applyDelta(list, xhr) {
    var template = document.createElement("template");
    template.innerHTML = xhr.responseText;
    var ticked = {};
    list.querySelectorAll("input[data-select-row]:checked").forEach(function (box) {
      ticked[box.value] = true;
    });
    var focused = document.activeElement && document.activeElement.id;
    template.content.querySelectorAll("[data-v][id]").forEach(function (fresh) {
      var current = document.getElementById(fresh.id);
      if (!current || !list.contains(current)) {
        return;
      }
      current.replaceWith(fresh);
      htmx.process(fresh);
      fresh.querySelectorAll("input[data-select-row]").forEach(function (box) {
        box.checked = !!ticked[box.value];
      });
    });
    list.setAttribute("data-etag", xhr.getResponseHeader("ETag") || "");
    var focus = focused && document.getElementById(focused);
    if (focus && focus !== document.activeElement) {
      focus.focus({ preventScroll: true });
    }
    countTicked();
    refreshTimes();
  }

  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (!xhr) {
      return;
    }
    if (xhr.status === 304) {
      event.detail.shouldSwap = false;
      event.detail.isError = false;
    } else if (xhr.getResponseHeader("X-Overview-Delta") && isList(event.detail.target)) {
      event.detail.shouldSwap = false;
      applyDelta(event.detail.target, xhr);
    }
  });

  // A swap of the list keeps what the user ticked and the control they used focused.
  var kept = null;

  document.addEventListener("htmx:beforeRequest", function (event) {
    if (isList(event.detail.target)) {
      var active = document.activeElement;
      kept = { focus: active && active.id ? active.id : null };
    }
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    if (!isList(event.detail.target) || !event.detail.shouldSwap) {
      return;
    }
    var ticked = [];
    document.querySelectorAll("input[data-select-row]:checked").forEach(function (box) {
      ticked.push(box.value);
    });
    var active = document.activeElement;
    kept = {
      ticked: ticked,
      focus: (kept && kept.focus) || (active && active.id ? active.id : null),
    };
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var list = document.getElementById("account-list");
    if (!kept || !list || !list.isConnected) {
      return;
    }
    (kept.ticked || []).forEach(function (value) {
      var box = list.querySelector('input[data-select-row][value="' + CSS.escape(value) + '"]');
      if (box) {
        box.checked = true;
      }
    });
    var focus = kept.focus && document.getElementById(kept.focus);
    if (focus && focus !== document.activeElement) {
      focus.focus({ preventScroll: true });
    }
    kept = null;
    countTicked();
    refreshTimes();
  });

  // "Tick every account on this page", and how many are ticked.
  function countTicked() {
    var label = document.querySelector("[data-selected-count]");
    if (!label) {
      return;
    }
    if (!label.hasAttribute("data-template")) {
      label.setAttribute("data-template", label.textContent);
    }
    var ticked = document.querySelectorAll("input[data-select-row]:checked").length;
    var template = label.getAttribute("data-template");
    label.textContent = ticked ? template + " (" + ticked + ")" : template;
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.hasAttribute("data-select-page")) {
      document.querySelectorAll("input[data-select-row]").forEach(function (box) {
        box.checked = target.checked;
      });
    }
    if (target.hasAttribute("data-select-page") || target.hasAttribute("data-select-row")) {
      var scope = document.querySelector('#bulk-form input[name="scope"][value="selected"]');
      if (scope) {
        scope.checked = true;
      }
      countTicked();
    }
  });

  // Relative times ("3 minutes ago") move on in the browser, from their datetime: the
  // list is only sent again when something in it changed.
  var UNITS = [
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
  ];

  function refreshTimes() {
    var list = document.getElementById("account-list");
    if (!list || typeof Intl === "undefined" || !Intl.RelativeTimeFormat) {
      return;
    }
    var format = new Intl.RelativeTimeFormat(document.documentElement.lang || undefined, { numeric: "always" });
    var now = Date.now();
    list.querySelectorAll("time[data-relative]").forEach(function (time) {
      var at = Date.parse(time.getAttribute("datetime"));
      if (isNaN(at)) {
        return;
      }
      var seconds = (at - now) / 1000;
      var text;
      if (time.getAttribute("data-relative") === "next" && seconds <= 0) {
        text = list.getAttribute("data-due-now");
      } else if (seconds > -60 && seconds <= 0) {
        text = list.getAttribute("data-just-now");
      } else if (seconds > 0 && seconds < 60) {
        text = list.getAttribute("data-soon");
      } else {
        for (var i = 0; i < UNITS.length; i++) {
          if (Math.abs(seconds) >= UNITS[i][1]) {
            var amount = Math.floor(Math.abs(seconds) / UNITS[i][1]);
            text = format.format(seconds < 0 ? -amount : amount, UNITS[i][0]);
            break;
          }
        }
      }
      if (text && time.textContent !== text) {
        time.textContent = text;
      }
    });
  }

  setInterval(refreshTimes, 30000);

  document.addEventListener("htmx:responseError", report);
  document.addEventListener("htmx:sendError", report);
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail && event.detail.successful) {
      pollFailed = false;
    }
  });

  // The questions queue: choosing a saved reply puts it, its placeholders filled in for that
  // question, into the answer box, to be edited before sending. Without this file the form
  // sends the chosen reply and the server fills it in (accounts.services.saved_reply_fill).
  var savedReplies = null;

  function fillReply(text, title, buyer) {
    if (!buyer) {
      text = text.replace(/[ ,]*\{buyer_nickname\}/g, "");
    }
    return text.replace(/\{item_title\}/g, title).replace(/\{buyer_nickname\}/g, buyer).slice(0, 2000);
  }

  document.addEventListener("change", function (event) {
    var select = event.target;
    if (!select.hasAttribute || !select.hasAttribute("data-saved-reply")) {
      return;
    }
    if (savedReplies === null) {
      var data = document.getElementById("saved-replies");
      savedReplies = data ? JSON.parse(data.textContent) : {};
    }
    var item = select.closest("[data-workspace]");
    var box = document.getElementById(select.getAttribute("data-saved-reply"));
    if (!item || !box || !select.value) {
      return;
    }
    var replies = savedReplies[item.getAttribute("data-workspace")] || [];
    for (var i = 0; i < replies.length; i++) {
      if (String(replies[i].id) === select.value) {
        box.value = fillReply(replies[i].text, item.getAttribute("data-item-title") || "", item.getAttribute("data-buyer") || "");
        box.focus();
        return;
      }
    }
  });
})();
