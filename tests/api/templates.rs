//! Templates: `user_template` and `agent_template` on `POST /vkyc` choose a named,
//! versioned template; the request keeps the version it was made under; the agent
//! template decides the checklist (captures, liveness, PAN, questions, rejection
//! reasons) and when approval is allowed; `vkyc template` lists, shows, imports and
//! exports them.

use crate::calls::{
    agent, calls_app, in_call, in_call_with, queue_and_assign, request_extra, staff, JPEG_B64,
};
use crate::helpers::*;
use crate::journey::customer;
use reqwest::Method;
use serde_json::{json, Value};

/// `request_extra()` with these fields added.
fn extra(fields: Value) -> Value {
    let mut body = request_extra();
    for (k, v) in fields.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

/// The case file's templates (name, version and the version's body).
async fn templates_of(app: &TestApp, id: &str) -> Value {
    let admin = staff(app, &format!("admin.{id}"), "admin").await;
    let reference = app.status(id).await["reference_id"].clone();
    admin.get(&format!("/cases/{reference}")).await.ok()["templates"].clone()
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn templates_default_are_chosen_by_name_and_unknown_names_are_refused() {
    let app = spawn_app().await;
    let user = |id: &str| json!({"user_id": id, "phone": "9876543210"});
    app.call(Method::POST, "/user", Some(user("tu"))).await.ok();

    // None named: the defaults, version 1.
    app.call(
        Method::POST,
        "/vkyc",
        Some(json!({"verification_id": "t-default", "user_id": "tu"})),
    )
    .await
    .ok();
    let t = templates_of(&app, "t-default").await;
    assert_eq!(t["user"]["name"], "vkyc_standard_template");
    assert_eq!(t["user"]["version"], 1);
    assert_eq!(t["agent"]["name"], "vkyc_agent_template_v1");
    assert_eq!(t["agent"]["version"], 1);
    let kinds: Vec<&str> = t["agent"]["body"]["captures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["face", "pan"]);

    // Named built-ins are kept as named.
    app.call(
        Method::POST,
        "/vkyc",
        Some(json!({"verification_id": "t-named", "user_id": "tu",
                    "user_template": "vkyc_user_okyc_template_v1",
                    "agent_template": "vkyc_agent_template_signature_v1"})),
    )
    .await
    .ok();
    let t = templates_of(&app, "t-named").await;
    assert_eq!(t["user"]["name"], "vkyc_user_okyc_template_v1");
    assert_eq!(t["agent"]["name"], "vkyc_agent_template_signature_v1");

    // Unknown names: the hosted API's errors, and nothing is created.
    for (field, code) in [
        ("user_template", "user_template_value_invalid"),
        ("agent_template", "agent_template_value_invalid"),
    ] {
        let mut body = json!({"verification_id": "t-unknown", "user_id": "tu"});
        body[field] = json!("vkyc_no_such_template");
        let reply = app.call(Method::POST, "/vkyc", Some(body)).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.body["code"], code);
        assert_eq!(reply.body["type"], "validation_error");
        // A user template's name is not an agent template's.
        let mut crossed = json!({"verification_id": "t-unknown", "user_id": "tu"});
        crossed[field] = json!(if field == "user_template" {
            "vkyc_agent_template_v1"
        } else {
            "vkyc_standard_template"
        });
        assert_eq!(
            app.call(Method::POST, "/vkyc", Some(crossed)).await.body["code"],
            code
        );
    }
    let gone = app
        .call(Method::GET, "/vkyc?verification_id=t-unknown", None)
        .await;
    assert_eq!(gone.status, 404);
}

#[tokio::test]
async fn templates_are_versioned_and_a_request_keeps_its_version() {
    let app = spawn_app().await;
    let work = tempfile::tempdir().unwrap();
    app.call(
        Method::POST,
        "/user",
        Some(json!({"user_id": "tv", "phone": "9876543210"})),
    )
    .await
    .ok();
    let v1 = write(
        work.path(),
        "bank.toml",
        r#"name = "bank_checklist"
description = "Face only"
liveness_required = false
pan_required = false
[[captures]]
kind = "face"
label = "face"
"#,
    );
    let out = app.cli(&["template", "import", "agent", &v1]);
    assert!(
        out.contains("agent template bank_checklist: version 1 added"),
        "{out}"
    );
    let again = app.cli(&["template", "import", "agent", &v1]);
    assert!(again.contains("unchanged, still version 1"), "{again}");
    let create = |id: &str| json!({"verification_id": id, "user_id": "tv", "agent_template": "bank_checklist"});
    app.call(Method::POST, "/vkyc", Some(create("tv-1")))
        .await
        .ok();

    // A changed template is the next version: new requests get it, the old keeps v1.
    let v2 = write(
        work.path(),
        "bank2.json",
        r#"{"name": "bank_checklist", "description": "Face and signature",
            "captures": [{"kind": "face", "label": "face"},
                         {"kind": "signature", "label": "signature on paper"}]}"#,
    );
    let out = app.cli(&["template", "import", "agent", &v2]);
    assert!(out.contains("version 2 added"), "{out}");
    app.call(Method::POST, "/vkyc", Some(create("tv-2")))
        .await
        .ok();
    let first = templates_of(&app, "tv-1").await["agent"].clone();
    let second = templates_of(&app, "tv-2").await["agent"].clone();
    assert_eq!(
        (first["version"].clone(), second["version"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(first["body"]["captures"].as_array().unwrap().len(), 1);
    assert_eq!(first["body"]["liveness_required"], false);
    assert_eq!(second["body"]["captures"][1]["kind"], "signature");
    assert_eq!(second["body"]["liveness_required"], true);

    // The command line lists, shows and exports them; an export imports unchanged.
    let list = app.cli(&["template", "list"]);
    for line in [
        "agent  bank_checklist",
        "agent  vkyc_agent_template_v1",
        "user   vkyc_standard_template",
        "user   vkyc_user_okyc_template_v1",
    ] {
        assert!(list.contains(line), "{line} in {list}");
    }
    let shown = app.cli(&[
        "template",
        "show",
        "agent",
        "bank_checklist",
        "--version",
        "1",
    ]);
    assert!(
        shown.contains("version 1") && shown.contains("\"Face only\""),
        "{shown}"
    );
    let exported = work.path().join("out.toml");
    app.cli(&[
        "template",
        "export",
        "agent",
        "bank_checklist",
        exported.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(text.contains("[[captures]]"), "{text}");
    let out = app.cli(&["template", "import", "agent", exported.to_str().unwrap()]);
    assert!(out.contains("unchanged, still version 2"), "{out}");

    // A template that cannot work is refused, and adds nothing.
    let bad = write(
        work.path(),
        "bad.toml",
        "name = \"bank_checklist\"\ncaptures = [{ kind = \"Face!\", label = \"x\" }]\n",
    );
    let refused = app.cli_output(&["template", "import", "agent", &bad]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("captures[0].kind"), "{err}");
    assert!(app
        .cli(&["template", "show", "agent", "bank_checklist"])
        .contains("version 2"));
}

#[tokio::test]
async fn templates_an_agent_template_decides_the_checklist_and_the_approval() {
    let app = calls_app(60, 3600).await;
    let agent = agent(&app, "agent.tpl").await;

    // Under the signature template: the checklist lists it, approval waits for it.
    let signature = || extra(json!({"agent_template": "vkyc_agent_template_signature_v1"}));
    let (_, call) = in_call_with(&app, &agent, "tpl-sig", signature()).await;
    let view = agent.call_view().await;
    assert_eq!(
        view["templates"]["agent"]["name"],
        "vkyc_agent_template_signature_v1"
    );
    assert_eq!(view["checklist"]["captures"][2]["kind"], "signature");
    assert_eq!(
        view["checklist"]["captures"][2]["label"],
        "signature on paper"
    );
    crate::calls::complete_checks(&agent, call).await;
    agent
        .post(&format!("/calls/{call}/end"), json!({}))
        .await
        .ok();
    let decide = |decision: &str, reason: Option<&str>| {
        let mut body = json!({"call_id": call, "decision": decision, "remarks": "checked"});
        if let Some(r) = reason {
            body["reason"] = json!(r);
        }
        body
    };
    let blocked = agent
        .post(&format!("/calls/{call}/decision"), decide("approved", None))
        .await;
    assert_eq!(blocked.status, 409, "{}", blocked.body);
    assert_eq!(blocked.body["code"], "approval_incomplete");
    assert_eq!(
        blocked.body["message"],
        "approval needs a capture of the signature on paper."
    );
    // A reason not in the template's list is refused; nothing is decided.
    let wrong = agent
        .post(
            &format!("/calls/{call}/decision"),
            decide("rejected", Some("Made up")),
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert_eq!(wrong.body["code"], "reason_value_invalid");
    let rejected = agent
        .post(
            &format!("/calls/{call}/decision"),
            decide("rejected", Some("Signature not shown or not legible")),
        )
        .await
        .ok();
    assert_eq!(rejected["sub_status"], "AGENT_REJECTED");
    // The reason is in the case's timeline, with the move it explains.
    let admin = staff(&app, "admin.tpl", "admin").await;
    let reference = app.status("tpl-sig").await["reference_id"].clone();
    let case = admin.get(&format!("/cases/{reference}")).await.ok();
    let moved = case["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["to_sub_status"] == "AGENT_REJECTED")
        .expect("the rejection in the timeline")
        .clone();
    assert_eq!(
        moved["details"]["reason"],
        "Signature not shown or not legible"
    );

    // Under the signature template a signature still can be taken during the call, and
    // then approval goes through; under the standard one it is not a capture at all.
    let (_, call2) = in_call(&app, &agent, "tpl-std").await;
    let refused = agent
        .post(
            &format!("/calls/{call2}/captures"),
            json!({"kind": "signature", "image": JPEG_B64}),
        )
        .await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.body["code"], "kind_value_invalid");
    crate::calls::complete_checks(&agent, call2).await;
    agent
        .post(&format!("/calls/{call2}/end"), json!({}))
        .await
        .ok();
    agent
        .post(
            &format!("/calls/{call2}/decision"),
            json!({"call_id": call2, "decision": "approved", "remarks": "ok"}),
        )
        .await
        .ok();

    let (_, call3) = in_call_with(&app, &agent, "tpl-sig2", signature()).await;
    crate::calls::complete_checks(&agent, call3).await;
    agent
        .post(
            &format!("/calls/{call3}/captures"),
            json!({"kind": "signature", "image": JPEG_B64}),
        )
        .await
        .ok();
    agent
        .post(&format!("/calls/{call3}/end"), json!({}))
        .await
        .ok();
    let approved = agent
        .post(
            &format!("/calls/{call3}/decision"),
            json!({"call_id": call3, "decision": "approved", "remarks": "all seen"}),
        )
        .await
        .ok();
    assert_eq!(approved["sub_status"], "AGENT_APPROVED");
}

#[tokio::test]
async fn templates_an_agent_template_sets_how_many_bank_questions_are_drawn() {
    let app = calls_app(60, 3600).await;
    let work = tempfile::tempdir().unwrap();
    let file = write(
        work.path(),
        "few.toml",
        "name = \"few_questions\"\nrandom_questions = 0\nmerchant_questions_required = false\n\
         liveness_required = false\npan_required = false\ncaptures = []\n",
    );
    app.cli(&["template", "import", "agent", &file]);
    // A bank of one mandatory question and three others, two of them drawn per call.
    let admin = staff(&app, "admin.few", "admin").await;
    admin
        .post(
            "/admin/questions",
            json!({"base_version": 0, "random_count": 2, "questions": [
                {"en": "What is your full name?", "mandatory": true},
                {"en": "Which city do you live in?"},
                {"en": "What is your occupation?"},
                {"en": "What is your father's name?"},
            ]}),
        )
        .await
        .ok();
    let agent = agent(&app, "agent.few").await;
    let extra = extra(json!({"agent_template": "few_questions"}));
    let (_, call) = in_call_with(&app, &agent, "tpl-few", extra).await;
    let view = agent.call_view().await;
    // The merchant's two questions and the bank's mandatory one: none of the others,
    // where the bank alone would draw two.
    let mut asked: Vec<&str> = view["call"]["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["question"].as_str().unwrap())
        .collect();
    asked.sort();
    assert_eq!(
        asked,
        [
            "What is your full name?",
            "What is your mother's maiden name?",
            "Which bank holds your salary account?"
        ]
    );
    // Nothing else required: the bank's question answered, the merchant's left
    // unanswered, no capture, no liveness, no PAN.
    for (index, q) in view["call"]["questions"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        if q["source"] != "merchant" {
            agent
                .post(
                    &format!("/calls/{call}/answers"),
                    json!({"index": index, "answer": "correct"}),
                )
                .await
                .ok();
        }
    }
    agent
        .post(&format!("/calls/{call}/end"), json!({}))
        .await
        .ok();
    let approved = agent
        .post(
            &format!("/calls/{call}/decision"),
            json!({"call_id": call, "decision": "approved", "remarks": "seen"}),
        )
        .await
        .ok();
    assert_eq!(approved["sub_status"], "AGENT_APPROVED");
}

#[tokio::test]
async fn templates_in_the_admin_console_are_listed_shown_and_imported() {
    let app = spawn_app().await;
    let admin = staff(&app, "admin.tplc", "admin").await;
    let agent = staff(&app, "agent.tplc", "agent").await;
    assert_eq!(agent.get("/admin/templates").await.status, 403);

    let list = admin.get("/admin/templates").await.ok();
    let names: Vec<&str> = list["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"vkyc_standard_template") && names.contains(&"vkyc_agent_template_v1"));
    let shown = admin
        .get("/admin/templates/agent/vkyc_agent_template_v1")
        .await
        .ok();
    assert_eq!(shown["version"], 1);
    assert!(shown["toml"].as_str().unwrap().contains("[[captures]]"));
    assert_eq!(
        admin.get("/admin/templates/agent/no_such").await.status,
        404
    );
    assert_eq!(
        admin
            .get("/admin/templates/robot/vkyc_agent_template_v1")
            .await
            .status,
        404
    );

    // Import: checked (the field named), then the next version; the same text adds none.
    let bad = admin
        .post(
            "/admin/templates/agent",
            json!({"text": "name = \"desk_tpl\"\ncaptures = 3\n"}),
        )
        .await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["code"], "template_value_invalid");
    let text = "name = \"desk_tpl\"\n[[captures]]\nkind = \"face\"\nlabel = \"face\"\n";
    let added = admin
        .post("/admin/templates/agent", json!({"text": text}))
        .await
        .ok();
    assert_eq!(
        (
            added["name"].clone(),
            added["version"].clone(),
            added["added"].clone()
        ),
        (json!("desk_tpl"), json!(1), json!(true))
    );
    let same = admin
        .post("/admin/templates/agent", json!({"text": text}))
        .await
        .ok();
    assert_eq!(
        (same["version"].clone(), same["added"].clone()),
        (json!(1), json!(false))
    );
    let shown = admin
        .get("/admin/templates/agent/desk_tpl?version=1")
        .await
        .ok();
    assert_eq!(shown["body"]["captures"][0]["kind"], "face");
    assert_eq!(
        admin
            .get("/admin/templates/agent/desk_tpl?version=0")
            .await
            .status,
        400
    );
    // In the staff audit, by whom.
    let audit = app.store.staff_audit(Some(admin.id), 10).await.unwrap();
    assert!(audit.iter().any(
        |a| a.action == "template_imported" && a.target.as_deref() == Some("agent desk_tpl 1")
    ));
}

#[tokio::test]
async fn templates_a_user_template_gives_the_journey_the_banks_face() {
    let app = calls_app(60, 3600).await;
    let work = tempfile::tempdir().unwrap();
    let file = write(
        work.path(),
        "bank.toml",
        "name = \"asha_bank_journey\"\ndisplay_name = \"Asha Bank\"\n\
         primary_colour = \"#7a1f5c\"\nminutes = 8\n",
    );
    let out = app.cli(&["template", "import", "user", &file]);
    assert!(out.contains("version 1 added"), "{out}");

    // The journey's state: the bank's name and colour, what to keep ready, the hours.
    let c = customer(
        &app,
        "tpl-brand",
        extra(json!({"user_template": "asha_bank_journey",
                     "agent_template": "vkyc_agent_template_signature_v1",
                     "notification_types": ["sms"]})),
    )
    .await;
    let state = c.call(Method::GET, "state", None).await.ok();
    assert_eq!(
        state["brand"],
        json!({"name": "Asha Bank", "colour": "#7a1f5c", "logo": null})
    );
    let ready = &state["before_you_start"];
    assert_eq!(ready["minutes"], 8);
    assert_eq!(ready["pan_card"], true);
    assert_eq!(
        ready["paper_and_pen"], true,
        "the agent template wants a signature"
    );
    assert_eq!(ready["hours"], "00:00-24:00");
    assert_eq!(ready["days"].as_array().unwrap().len(), 7);

    // The message sent to the customer names the bank as the template says.
    let mut body = String::new();
    for _ in 0..50 {
        let sent = app
            .call(
                Method::GET,
                "/vkyc/notifications?verification_id=tpl-brand",
                None,
            )
            .await
            .ok();
        if let Some(sms) = sent["notifications"].as_array().unwrap().first() {
            if sms["state"] == "recorded" {
                body = sms["body"].as_str().unwrap().to_string();
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(body.contains("Video KYC for Asha Bank"), "{body}");

    // The default journey: the merchant's own name, no colour, no paper and pen.
    let plain = customer(&app, "tpl-plain", request_extra()).await;
    let state = plain.call(Method::GET, "state", None).await.ok();
    let merchant = app.store.merchant_name(1).await.unwrap();
    assert_eq!(
        state["brand"],
        json!({"name": merchant, "colour": "", "logo": null})
    );
    assert_eq!(state["before_you_start"]["paper_and_pen"], false);
    assert_eq!(state["before_you_start"]["minutes"], 5);

    // And the agent's desk names the bank for the case.
    let agent = agent(&app, "agent.brand").await;
    c.pass_checks().await;
    queue_and_assign(&c).await;
    let view = agent.call_view().await;
    assert_eq!(view["display_name"], "Asha Bank");
}

#[tokio::test]
async fn templates_the_okyc_user_template_always_asks_for_the_ekyc_file() {
    let app = calls_app(60, 3600).await;
    // The merchant sent aadhaar_details: the standard journey skips the Aadhaar step...
    let standard = customer(&app, "tpl-std-aadhaar", request_extra()).await;
    standard.consent().await;
    assert_eq!(standard.step().await, "ip");
    let state = standard.call(Method::GET, "state", None).await.ok();
    assert_eq!(state["aadhaar_required"], false);
    // ...the offline-KYC template asks the customer for the e-KYC file all the same.
    let okyc = customer(
        &app,
        "tpl-okyc",
        extra(json!({"user_template": "vkyc_user_okyc_template_v1"})),
    )
    .await;
    okyc.consent().await;
    assert_eq!(okyc.step().await, "aadhaar");
    let state = okyc.call(Method::GET, "state", None).await.ok();
    assert_eq!(state["aadhaar_required"], true);
    // The IP step is not open before it.
    let early = okyc.call(Method::POST, "ip", None).await;
    assert_eq!(early.status, 409);
    assert_eq!(early.body["code"], "journey_step_invalid");
}
