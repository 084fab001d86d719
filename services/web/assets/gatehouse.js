// Gatehouse pages: a few enhancements. Every page works without this script.
"use strict";
(function () {
  function pad(n) { return n < 10 ? "0" + n : String(n); }

  // "Time Left" counts down to the code's expiry.
  var timer = document.getElementById("time-left");
  if (timer) {
    var clock = timer.querySelector(".clock");
    var end = Date.parse(timer.getAttribute("data-expires-at"));
    var tick = function () {
      var left = Math.max(0, Math.round((end - Date.now()) / 1000));
      clock.textContent = Math.floor(left / 60) + ":" + pad(left % 60);
      if (left === 0) {
        timer.textContent = "The code has expired. Send a new code.";
        return;
      }
      setTimeout(tick, 1000);
    };
    if (!isNaN(end)) { tick(); }
  }

  // "Send a new code" waits out its throttle, then enables itself.
  var resend = document.getElementById("resend");
  if (resend && resend.disabled) {
    var hint = document.getElementById("resend-wait");
    var wait = parseInt(resend.getAttribute("data-wait"), 10) || 0;
    var step = function () {
      if (wait <= 0) {
        resend.disabled = false;
        if (hint) { hint.textContent = ""; }
        return;
      }
      if (hint) { hint.textContent = "You can ask for a new code in " + wait + " seconds."; }
      wait -= 1;
      setTimeout(step, 1000);
    };
    step();
  }

  var print = document.getElementById("print");
  if (print) { print.addEventListener("click", function () { window.print(); }); }
})();
