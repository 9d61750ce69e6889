//! Every customer-facing text of the messages, in English and Hindi, and how a message
//! is rendered for its channel.

use super::*;

// ---------------------------------------------------------------------------
// Texts: the one place with customer-facing wording
// ---------------------------------------------------------------------------
//
// Placeholders: {name} {merchant} {link} {slot} {slot_note}.
// `{slot}` is the formatted slot time, or `slot_fallback` when the caller has
// none. `{slot_note}` (used by the link texts only) is `slot_note` filled in
// when a slot is known and empty otherwise, so a link sent for an already
// booked slot still tells the customer when. `short` is the SMS / WhatsApp
// text: one paragraph, no line breaks. Hindi fallbacks are in the oblique
// case because they are always followed by a postposition (के लिए / पर / का /
// के साथ / ने).

pub(super) struct KindTexts {
    subject: &'static str,
    email: &'static str,
    short: &'static str,
}

pub(super) struct LangTexts {
    link: KindTexts,
    slot_booked: KindTexts,
    slot_reminder: KindTexts,
    slot_cancelled: KindTexts,
    otp: KindTexts,
    slot_note: &'static str,
    slot_fallback: &'static str,
    name_fallback: &'static str,
    merchant_fallback: &'static str,
}

pub(super) static EN: LangTexts = LangTexts {
    link: KindTexts {
        subject: "Complete your Video KYC for {merchant}",
        email: "Hello {name},\n\n\
                {merchant} has requested a Video KYC to verify your identity. {slot_note}\
                Please join using this secure link:\n\n\
                {link}\n\n\
                Keep your original identity document ready and join from a quiet, well-lit place \
                with a stable internet connection. Do not share this link with anyone.\n\n\
                Regards,\n{merchant}",
        short: "Dear {name}, please complete your Video KYC for {merchant} at {link} {slot_note}\
                Do not share this link.",
    },
    slot_booked: KindTexts {
        subject: "Your Video KYC with {merchant} is scheduled",
        email: "Hello {name},\n\n\
                Your Video KYC with {merchant} is booked for {slot}. \
                Please join on time using this secure link:\n\n\
                {link}\n\n\
                Keep your original identity document ready. Do not share this link with anyone.\n\n\
                Regards,\n{merchant}",
        short: "Dear {name}, your Video KYC with {merchant} is booked for {slot}. Join at {link}",
    },
    slot_reminder: KindTexts {
        subject: "Reminder: your Video KYC with {merchant}",
        email: "Hello {name},\n\n\
                This is a reminder that your Video KYC with {merchant} is at {slot}. \
                Please join on time using this secure link:\n\n\
                {link}\n\n\
                Keep your original identity document ready. Do not share this link with anyone.\n\n\
                Regards,\n{merchant}",
        short: "Reminder: Dear {name}, your Video KYC with {merchant} is at {slot}. Join at {link}",
    },
    slot_cancelled: KindTexts {
        subject: "Your Video KYC slot with {merchant} was cancelled",
        email: "Hello {name},\n\n\
                Your Video KYC slot with {merchant} for {slot} has been cancelled. \
                You can book a new slot or join now using this link:\n\n\
                {link}\n\n\
                Regards,\n{merchant}",
        short: "Dear {name}, your Video KYC slot with {merchant} for {slot} was cancelled. \
                Book a new slot at {link}",
    },
    otp: KindTexts {
        subject: "Your code for the Video KYC with {merchant}",
        email:
            "Hello {name},\n\n{code} is your code to confirm your mobile number for the Video KYC \
                with {merchant}. It is valid for 5 minutes. Do not share it with anyone.\n\n\
                Regards,\n{merchant}",
        short: "{code} is your code to confirm your mobile number for the Video KYC with \
                {merchant}. Valid for 5 minutes. Do not share it with anyone.",
    },
    slot_note: "Your slot: {slot}. ",
    slot_fallback: "your selected time",
    name_fallback: "Customer",
    merchant_fallback: "your service provider",
};

pub(super) static HI: LangTexts = LangTexts {
    link: KindTexts {
        subject: "{merchant} के लिए अपना वीडियो KYC पूरा करें",
        email: "नमस्ते {name},\n\n\
                {merchant} ने आपकी पहचान सत्यापित करने के लिए वीडियो KYC का अनुरोध किया है। {slot_note}\
                कृपया इस सुरक्षित लिंक से जुड़ें:\n\n\
                {link}\n\n\
                अपना मूल पहचान दस्तावेज़ साथ रखें और स्थिर इंटरनेट के साथ किसी शांत, अच्छी रोशनी वाली \
                जगह से जुड़ें। यह लिंक किसी के साथ साझा न करें।\n\n\
                धन्यवाद,\n{merchant}",
        short: "प्रिय {name}, {merchant} के लिए अपना वीडियो KYC {link} पर पूरा करें। {slot_note}\
                यह लिंक किसी से साझा न करें।",
    },
    slot_booked: KindTexts {
        subject: "{merchant} के साथ आपका वीडियो KYC निर्धारित हो गया है",
        email: "नमस्ते {name},\n\n\
                {merchant} के साथ आपका वीडियो KYC {slot} के लिए बुक हो गया है। \
                कृपया समय पर इस सुरक्षित लिंक से जुड़ें:\n\n\
                {link}\n\n\
                अपना मूल पहचान दस्तावेज़ साथ रखें। यह लिंक किसी के साथ साझा न करें।\n\n\
                धन्यवाद,\n{merchant}",
        short: "प्रिय {name}, {merchant} के साथ आपका वीडियो KYC {slot} के लिए बुक है। जुड़ें: {link}",
    },
    slot_reminder: KindTexts {
        subject: "रिमाइंडर: {merchant} के साथ आपका वीडियो KYC",
        email: "नमस्ते {name},\n\n\
                याद दिला दें कि {merchant} के साथ आपका वीडियो KYC {slot} पर है। \
                कृपया समय पर इस सुरक्षित लिंक से जुड़ें:\n\n\
                {link}\n\n\
                अपना मूल पहचान दस्तावेज़ साथ रखें। यह लिंक किसी के साथ साझा न करें।\n\n\
                धन्यवाद,\n{merchant}",
        short: "रिमाइंडर: प्रिय {name}, {merchant} के साथ आपका वीडियो KYC {slot} पर है। जुड़ें: {link}",
    },
    slot_cancelled: KindTexts {
        subject: "{merchant} के साथ आपका वीडियो KYC स्लॉट रद्द हो गया है",
        email: "नमस्ते {name},\n\n\
                {merchant} के साथ {slot} का आपका वीडियो KYC स्लॉट रद्द कर दिया गया है। \
                आप इस लिंक से नया स्लॉट बुक कर सकते हैं या अभी जुड़ सकते हैं:\n\n\
                {link}\n\n\
                धन्यवाद,\n{merchant}",
        short: "प्रिय {name}, {merchant} के साथ {slot} का आपका वीडियो KYC स्लॉट रद्द हो गया है। \
                नया स्लॉट बुक करें: {link}",
    },
    otp: KindTexts {
        subject: "{merchant} के साथ वीडियो KYC के लिए आपका कोड",
        email: "नमस्ते {name},\n\n{merchant} के साथ वीडियो KYC के लिए अपना मोबाइल नंबर पुष्टि करने का \
                आपका कोड {code} है। यह 5 मिनट तक मान्य है। इसे किसी के साथ साझा न करें।\n\n\
                धन्यवाद,\n{merchant}",
        short: "{merchant} के साथ वीडियो KYC के लिए आपका कोड {code} है। 5 मिनट तक मान्य। \
                इसे किसी के साथ साझा न करें।",
    },
    slot_note: "आपका स्लॉट: {slot}। ",
    slot_fallback: "आपके चुने हुए समय",
    name_fallback: "ग्राहक",
    merchant_fallback: "आपके सेवा प्रदाता",
};

pub(super) fn texts(lang: Lang) -> &'static LangTexts {
    match lang {
        Lang::En => &EN,
        Lang::Hi => &HI,
    }
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

/// Renders the text for one channel. `to` is copied as given; it is
/// validated and normalised by [`Notifier::send`] (or [`validate_address`]).
pub fn render(channel: Channel, kind: Kind, lang: Lang, to: &str, p: &Params) -> Message {
    let t = texts(lang);
    let kt = match kind {
        Kind::Link => &t.link,
        Kind::SlotBooked => &t.slot_booked,
        Kind::SlotReminder => &t.slot_reminder,
        Kind::SlotCancelled => &t.slot_cancelled,
        Kind::Otp => &t.otp,
    };

    // Customer and merchant names come from merchant API input: a line break
    // in them would split an SMS into paragraphs or fold a mail header, so
    // every value is flattened to one line first.
    let name = or_fallback(clean_inline(&p.name, MAX_PARAM_CHARS), t.name_fallback);
    let merchant = or_fallback(
        clean_inline(&p.merchant, MAX_PARAM_CHARS),
        t.merchant_fallback,
    );
    let link = clean_inline(&p.link, usize::MAX);
    let slot_given = p
        .slot_start
        .as_deref()
        .map(|s| clean_inline(s, MAX_PARAM_CHARS))
        .filter(|s| !s.is_empty());
    let slot = slot_given
        .clone()
        .unwrap_or_else(|| t.slot_fallback.to_string());
    let slot_note = match &slot_given {
        Some(s) => expand(t.slot_note, "{", "}", |k| (k == "slot").then(|| s.clone())),
        None => String::new(),
    };

    // Single pass: a customer name that happens to contain "{link}" stays
    // literal text instead of being expanded again.
    let vars = |key: &str| -> Option<String> {
        match key {
            "name" => Some(name.clone()),
            "merchant" => Some(merchant.clone()),
            "link" => Some(link.clone()),
            "slot" => Some(slot.clone()),
            "slot_note" => Some(slot_note.clone()),
            // Only digits: a code is never text a caller could shape.
            "code" => Some(
                p.code
                    .chars()
                    .filter(char::is_ascii_digit)
                    .take(8)
                    .collect(),
            ),
            _ => None,
        }
    };

    let (subject, body) = match channel {
        Channel::Email => (
            expand(kt.subject, "{", "}", vars),
            expand(kt.email, "{", "}", vars),
        ),
        Channel::Sms | Channel::Whatsapp => (
            String::new(),
            expand(kt.short, "{", "}", vars).trim_end().to_string(),
        ),
    };

    Message {
        channel,
        kind,
        to: to.trim().to_string(),
        subject,
        body,
    }
}

pub(super) fn or_fallback(s: String, fallback: &str) -> String {
    if s.is_empty() {
        fallback.to_string()
    } else {
        s
    }
}

/// Replaces control characters (line breaks, tabs, ...) with spaces, collapses
/// runs of whitespace, trims, and cuts to `max_chars` characters.
pub(super) fn clean_inline(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    let mut count = 0usize;
    for c in s.chars() {
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
            continue;
        }
        if count >= max_chars {
            break;
        }
        if pending_space {
            out.push(' ');
            count += 1;
            pending_space = false;
            if count >= max_chars {
                break;
            }
        }
        out.push(c);
        count += 1;
    }
    out.trim_end().to_string()
}

/// Substitutes `open key close` placeholders in one pass; values are never
/// re-scanned. Unknown keys are left untouched.
pub(super) fn expand(
    tpl: &str,
    open: &str,
    close: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(tpl.len() + 64);
    let mut rest = tpl;
    while let Some(start) = rest.find(open) {
        out.push_str(&rest[..start]);
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(close) else {
            out.push_str(&rest[start..]);
            return out;
        };
        match lookup(after[..end].trim()) {
            Some(v) => {
                out.push_str(&v);
                rest = &after[end + close.len()..];
            }
            None => {
                // Emit the opener literally and keep scanning right after it,
                // so "{{{to}}}" still finds the inner placeholder.
                out.push_str(open);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_is_single_pass_and_keeps_unknown() {
        let out = expand("{{a}} {{b}} {{{a}}} {{", "{{", "}}", |k| {
            (k == "a").then(|| "{{a}}".to_string())
        });
        assert_eq!(out, "{{a}} {{b}} {{{a}}} {{");
    }

    #[test]
    fn clean_inline_flattens() {
        assert_eq!(clean_inline("  a\r\n\tb  c ", 100), "a b c");
        assert_eq!(clean_inline("abcdef", 3), "abc");
        assert_eq!(clean_inline("\n\n", 3), "");
    }
}
