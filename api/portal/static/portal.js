// Only makes the portal quicker or kinder; every page works without it.
(function () {
  "use strict";

  // The error summary takes focus (for browsers that ignore autofocus on it).
  var summary = document.querySelector("[data-error-summary]");
  if (summary && document.activeElement !== summary) { summary.focus(); }

  // The session is about to time out: say so a few minutes before, and offer to extend it.
  var idle = parseInt(document.body.getAttribute("data-idle-seconds") || "0", 10);
  var notice = document.getElementById("session-notice");
  var extend = document.getElementById("session-extend");
  if (idle > 0 && notice) {
    var warnBefore = Math.min(300, Math.floor(idle / 3));
    var timer = null;
    var arm = function () {
      if (timer) { clearTimeout(timer); }
      timer = setTimeout(function () { notice.hidden = false; }, (idle - warnBefore - 60) * 1000);
    };
    arm();
    if (extend) {
      extend.addEventListener("click", function () {
        fetch("/portal/session", { credentials: "same-origin", cache: "no-store" }).then(function (r) {
          if (r.ok) { notice.hidden = true; arm(); } else { window.location.href = "/portal/login"; }
        });
      });
    }
  }
})();
