use crate::helpers::*;
use vkyc::domain::status::{Actor, Event, SubStatus};
use vkyc::store::{Changes, MoveError};

async fn request(app: &TestApp, vid: &str) -> vkyc::store::Request {
    app.create_user(&format!("u_{vid}")).await;
    let created = app.create_vkyc(vid, &format!("u_{vid}")).await;
    app.store
        .request_by_id(created["reference_id"].as_i64().unwrap())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn two_racing_moves_on_one_request_have_exactly_one_winner() {
    let app = spawn_app().await;
    for round in 0..5 {
        let r = request(&app, &format!("race{round}")).await;
        let none = Changes::default();
        let (a, b) = tokio::join!(
            app.store
                .apply(&r, &[Event::IpVerified], Actor::Customer, None, &none),
            app.store
                .apply(&r, &[Event::LinkExpired], Actor::System, None, &none),
        );
        let winners = [a.is_ok(), b.is_ok()].iter().filter(|w| **w).count();
        assert_eq!(winners, 1, "round {round}: {a:?} / {b:?}");
        assert!(matches!(a, Err(MoveError::Lost)) || matches!(b, Err(MoveError::Lost)));
        let history = app.store.history(r.id).await.unwrap();
        assert_eq!(history.len(), 2, "created + the winner's move only");
        let now = app.store.request_by_id(r.id).await.unwrap().unwrap();
        assert_eq!(now.sub_status.as_str(), history[1].to_sub_status);
    }
}

#[tokio::test]
async fn an_illegal_move_changes_nothing() {
    let app = spawn_app().await;
    let r = request(&app, "illegal").await;
    let err = app
        .store
        .apply(
            &r,
            &[Event::AuditorApproved],
            Actor::Auditor,
            None,
            &Changes::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, MoveError::Illegal(_)), "{err:?}");
    // A chain with an illegal step in the middle is refused whole.
    let err = app
        .store
        .apply(
            &r,
            &[Event::IpVerified, Event::AuditorApproved],
            Actor::System,
            None,
            &Changes::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, MoveError::Illegal(_)));
    let after = app.store.request_by_id(r.id).await.unwrap().unwrap();
    assert_eq!(after.sub_status, SubStatus::LinkGenerated);
    assert_eq!(after.version, r.version);
    assert_eq!(app.store.history(r.id).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_move_read_from_a_stale_copy_is_lost() {
    let app = spawn_app().await;
    let r = request(&app, "stale").await;
    let moved = app
        .store
        .apply(
            &r,
            &[Event::IpVerified],
            Actor::Customer,
            None,
            &Changes::default(),
        )
        .await
        .unwrap();
    assert_eq!(moved.sub_status, SubStatus::UserIpVerificationSuccessful);
    let err = app
        .store
        .apply(
            &r,
            &[Event::IpVerified],
            Actor::Customer,
            None,
            &Changes::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, MoveError::Lost));
    assert_eq!(
        app.status("stale").await["sub_status"],
        "USER_IP_VERIFICATION_SUCCESSFUL"
    );
}
