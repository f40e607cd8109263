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

  document.addEventListener("htmx:responseError", report);
  document.addEventListener("htmx:sendError", report);
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail && event.detail.successful) {
      pollFailed = false;
    }
  });
})();
