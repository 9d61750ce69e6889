//! The journey's record of its steps (`GET /vkyc/journey`, the case file): every step the
//! customer was shown gets an end, also a call step, which the customer does not end
//! themselves: it ends when the call drops or the agent ends it.

use crate::calls::{agent, calls_app, queue_and_assign, request_extra, wait_for};
use crate::journey::customer;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn the_queue_and_call_steps_end_with_the_move_that_leaves_them() {
    let app = calls_app(60, 3).await;
    let agent = agent(&app, "agent.steps").await;
    let c = customer(&app, "steps", request_extra()).await;
    c.pass_checks().await;

    // The first call: shown to the customer, accepted, and dropped (no media ever flows).
    queue_and_assign(&c).await;
    assert_eq!(c.step().await, "call");
    c.call(Method::POST, "call/accept", None).await.ok();
    wait_for(&app, "steps", "USER_DROPPED_OFF", 20).await;
    assert_eq!(c.step().await, "waiting");

    // The second: shown, accepted, and ended by the agent.
    queue_and_assign(&c).await;
    assert_eq!(c.step().await, "call");
    c.call(Method::POST, "call/accept", None).await.ok();
    let call = agent.call_view().await["call"]["id"].as_i64().unwrap();
    agent
        .post(&format!("/calls/{call}/end"), json!({}))
        .await
        .ok();
    assert_eq!(c.sub_status().await, "AGENT_ENDED_CALL");

    let journey = app
        .call(Method::GET, "/vkyc/journey?verification_id=steps", None)
        .await
        .ok();
    let steps = journey["steps"].as_array().unwrap();
    // Each call has a row of its own, ended by what ended it.
    let calls: Vec<&Value> = steps.iter().filter(|s| s["step"] == "call").collect();
    assert_eq!(calls.len(), 2, "{journey}");
    assert_eq!(calls[0]["outcome"], "USER_DROPPED_OFF");
    assert_eq!(calls[1]["outcome"], "AGENT_ENDED_CALL");
    assert!(calls[0]["ended_at"].as_str() < calls[1]["started_at"].as_str());
    // Nothing is left open: the customer is at the end of the journey.
    for s in steps {
        assert!(s["ended_at"].is_string(), "{s} has no end");
        assert!(s["outcome"].is_string(), "{s} has no outcome");
    }
}
