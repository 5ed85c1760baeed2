//! The order store's own tests: an order holds its alert across a restart (SQLite, PostgreSQL).

use super::*;

fn order(alert_id: i64, ts: i64) -> NewOrder<'static> {
    NewOrder {
        alert_id,
        site: "s1",
        kind: OrderKind::StopWork,
        deadline_ts: None,
        note: "",
        by: "li",
        ts,
    }
}

fn check(order_id: i64, result: ReinspectionResult, ts: i64) -> NewReinspection<'static> {
    NewReinspection {
        order_id,
        result,
        by: "li",
        ts,
        note: "",
        photo: None,
        severity: "warning",
    }
}

#[test]
fn an_order_holds_its_alert_across_a_restart_until_a_passed_reinspection() {
    let dir = tempfile::tempdir().expect("dir");
    holds_across_restarts(|| ActingStore::open(dir.path()).expect("open"));
}

#[test]
fn an_order_holds_its_alert_across_a_restart_on_postgres() {
    let Some(pg) = dustwatch_testkit::Postgres::start() else {
        return;
    };
    let (url, dir) = (pg.database(), tempfile::tempdir().expect("dir"));
    holds_across_restarts(|| {
        let db = crate::store::postgres::PgActing::open(&url).expect("postgres");
        ActingStore::with_db(std::sync::Arc::new(db), dir.path()).expect("open")
    });
}

/// `open` opens the store again on the same rows (a restart).
fn holds_across_restarts(open: impl Fn() -> ActingStore) {
    let store = open();
    // Another store on the same rows (another instance) reads them when asked.
    let elsewhere = open().shared_holds();
    assert!(!elsewhere.is_held(7, 0), "no order yet");
    let o = store.issue_order(&order(7, 1_000)).expect("order");
    assert!(elsewhere.is_held(7, i64::MAX - 1), "held at once elsewhere");
    assert!(matches!(
        store.issue_order(&order(7, 1_001)),
        Err(ActingError::Invalid(_))
    ));
    let rectify = NewOrder {
        kind: OrderKind::Rectify,
        ..order(8, 1_000)
    };
    assert!(matches!(
        store.issue_order(&rectify),
        Err(ActingError::Invalid(_))
    ));
    let failed = store
        .reinspect(&check(o.id, ReinspectionResult::Failed, 2_000))
        .expect("failed");
    assert_eq!(failed.escalated_to.as_deref(), Some("violation"));
    let again = store
        .reinspect(&check(o.id, ReinspectionResult::Failed, 2_500))
        .expect("failed again");
    assert_eq!(again.escalated_to.as_deref(), Some("critical"));
    drop(store);

    let store = open();
    let holds = store.holds();
    assert!(holds.is_held(7, i64::MAX - 1));
    assert!(!holds.is_held(8, 0), "no order, no hold");
    store
        .reinspect(&check(o.id, ReinspectionResult::Passed, 3_000))
        .expect("passed");
    assert!(holds.is_held(7, 2_999) && !holds.is_held(7, 3_000));
    assert!(elsewhere.is_held(7, 2_999) && !elsewhere.is_held(7, 3_000));
    assert!(!elsewhere.is_held(8, 0), "no order, no hold");
    assert!(matches!(
        store.reinspect(&check(o.id, ReinspectionResult::Passed, 3_100)),
        Err(ActingError::Invalid(_))
    ));
    drop(store);
    let store = open();
    assert!(store.holds().is_held(7, 2_999) && !store.holds().is_held(7, 3_000));
    let o = store.order(o.id).expect("order");
    assert_eq!(
        (o.state, o.escalations, o.reinspections.len()),
        (OrderState::Passed, 2, 3)
    );
}
