// The journey's evidence steps that move no status: the mobile number confirmed with a
// one-time code, and the personal-details form of the request's user template. Drawn
// with the page's own helpers (journey.js passes them), so they look like every step.

/** The mobile number, confirmed with a one-time code. */
export function drawMobileOtp(ui, state, notice) {
  const { t, el, screen, alertBox, beforeYouStart, firstScreen } = ui;
  const otp = state.otp || {};
  const parts = [];
  if (firstScreen(state)) parts.push(beforeYouStart(state.before_you_start));
  const waiting = otp.waiting_until && Date.parse(otp.waiting_until) > Date.now();
  const messages = {
    otp_value_invalid: t("otp_wrong"),
    otp_expired: t("otp_expired"),
    code_value_invalid: t("otp_format"),
  };
  if (waiting) parts.push(alertBox(t("otp_waiting", { time: otp.waiting_until_text })));
  else if (messages[notice]) parts.push(alertBox(messages[notice]));
  if (otp.sandbox_code) parts.push(el("p", { class: "muted", id: "otp-sandbox", text: t("otp_sandbox", { code: otp.sandbox_code }) }));
  const send = el("button", { type: "button", id: "otp-send", class: otp.sent ? "secondary" : null, text: otp.sent ? t("otp_resend") : t("otp_send") });
  send.addEventListener("click", () => sendOtp(ui, send));
  if (!otp.sent || waiting) {
    parts.push(el("p", { text: t("otp_intro", { to: otp.to }) }));
    send.disabled = Boolean(waiting);
    return screen("mobile_otp", t("otp_heading"), ...parts, send);
  }
  const code = el("input", { type: "text", id: "otp-code", inputmode: "numeric", autocomplete: "one-time-code",
    pattern: "[0-9]{6}", maxlength: "6", required: true, "aria-describedby": "otp-left" });
  const button = el("button", { type: "submit", id: "otp-submit", text: t("otp_submit") });
  const form = el("form", {}, el("label", { for: "otp-code", text: t("otp_code_label") }), code, button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    verifyOtp(ui, code.value.trim(), button);
  });
  const left = el("p", { class: "muted", id: "otp-left", text: t("otp_tries_left", { n: otp.tries_left, resends: otp.resends_left }) });
  const wait = el("p", { class: "muted", id: "otp-resend-wait" });
  // A new code may be asked for 30 s after the last.
  const resendAt = Date.parse(otp.resend_at || 0);
  const tick = () => {
    const seconds = Math.ceil((resendAt - Date.now()) / 1000);
    send.disabled = seconds > 0 || otp.resends_left <= 0;
    wait.textContent = seconds > 0 ? t("otp_resend_in", { seconds }) : "";
    if (seconds > 0 && document.body.contains(wait)) setTimeout(tick, 1000);
  };
  parts.push(el("p", { text: t("otp_sent", { to: otp.to }) }));
  screen("mobile_otp", t("otp_heading"), ...parts, form, left, send, wait);
  tick();
}

async function sendOtp({ busy, call_, draw, refresh }, button) {
  busy(button, true);
  try {
    const result = await call_("POST", "otp", {});
    draw(result.state);
  } catch (error) {
    busy(button, false);
    refresh(error.code);
  }
}

async function verifyOtp({ busy, call_, draw, refresh }, code, button) {
  if (!/^[0-9]{6}$/.test(code)) return refresh("code_value_invalid");
  busy(button, true);
  try {
    const result = await call_("POST", "otp/verify", { code });
    draw(result.state);
  } catch (error) {
    refresh(error.code);
  }
}

/** The personal-details form the request's user template describes. */
export function drawPersonalDetails(ui, state, notice) {
  const { t, el, lang, screen, alertBox, busy, call_, refresh, draw, beforeYouStart, firstScreen } = ui;
  const fields = state.personal_details || [];
  const label = (f) => (lang === "hi" && f.label_hi) || f.label;
  const inputs = fields.map((f) => {
    const id = `detail-${f.name}`;
    const input = f.type === "choice"
      ? el("select", { id, name: f.name, required: f.required !== false },
        el("option", { value: "", text: t("details_choose") }), ...f.choices.map((c) => el("option", { value: c, text: c })))
      : el("input", { type: "text", id, name: f.name, maxlength: "100", autocomplete: "off", required: f.required !== false });
    return [el("label", { for: id, text: `${label(f)}${f.required !== false ? " *" : ""}` }), input];
  });
  const button = el("button", { type: "submit", id: "details-submit", text: t("details_submit") });
  const form = el("form", { id: "details-form" }, ...inputs.flat(), button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const details = {};
    for (const f of fields) {
      const value = form.elements[f.name].value.trim();
      if (value) details[f.name] = value;
    }
    busy(button, true);
    call_("POST", "details", { details }).then((result) => draw(result.state)).catch((error) => {
      busy(button, false);
      // The server names the field at fault: say which, in the page's language.
      const name = (error.code || "").replace(/_(missing|value_invalid)$/, "");
      const field = fields.find((f) => f.name === name);
      let box = document.getElementById("message");
      if (!box) {
        box = alertBox("");
        form.before(box);
      }
      box.textContent = field ? t("details_check", { field: label(field) }) : error.message;
      if (field) form.elements[field.name].focus();
      if (error.status === 409) refresh();
    });
  });
  screen("personal_details", t("details_heading"), firstScreen(state) ? beforeYouStart(state.before_you_start) : null,
    notice ? alertBox(notice) : null, el("p", { text: t("details_intro") }), form);
}
