// vkyc embed: shows a customer's Video KYC journey inside a merchant's own page.
// <div id="vkyc"></div>
// <script src="https://kyc.example.in/embed.js" data-token="ACCESS_TOKEN" data-target="vkyc"></script>
// or, from script: VKYC.open({ token: "ACCESS_TOKEN", target: element }).
(function () {
  var script = document.currentScript;
  var origin = script ? new URL(script.src).origin : "";
  function open(options) {
    var target = typeof options.target === "string" ? document.getElementById(options.target) : options.target;
    if (!target) throw new Error("vkyc: no element to show the journey in");
    var frame = document.createElement("iframe");
    frame.src = origin + "/v/" + encodeURIComponent(options.token);
    frame.title = "Video KYC";
    frame.allow = "camera; microphone; geolocation";
    frame.style.cssText = "width:100%;min-height:640px;border:0";
    target.innerHTML = "";
    target.appendChild(frame);
    return frame;
  }
  window.VKYC = { open: open };
  if (script && script.dataset.token) {
    var go = function () { open({ token: script.dataset.token, target: script.dataset.target || "vkyc" }); };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", go); else go();
  }
})();
