#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Property: any two ways of writing the same set of RBAC grants (rules
//! split or merged, reordered, duplicated, resourceNames spread) compare as
//! no drift; removing a grant is narrowing only, adding one is widening.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::{Value, json};
use warden_drift::report::Status;
use warden_drift::{Options, State, compare};

const VERBS: [&str; 6] = ["get", "list", "watch", "create", "delete", "patch"];
const RESOURCES: [&str; 3] = ["pods", "services", "deployments"];
/// Index 3 stands for "every name" (no resourceNames).
const NAMES: [&str; 3] = ["a", "b", "c"];

type Grant = (usize, usize, usize);

/// One way of writing `grants` as rules: the order comes from `seed`,
/// consecutive grants sharing resource and name merge when `merge` says so,
/// and rules repeat when `dup` says so.
fn write(grants: &BTreeSet<Grant>, seed: usize, merge: &[bool], dup: &[bool]) -> Vec<Value> {
    let mut order: Vec<Grant> = grants.iter().copied().collect();
    let n = order.len();
    order.rotate_left(seed % n.max(1));
    if seed % 2 == 1 {
        order.reverse();
    }
    let mut rules: Vec<(usize, usize, Vec<usize>)> = Vec::new();
    for (i, (v, r, name)) in order.into_iter().enumerate() {
        let flag = merge.get(i % merge.len().max(1)).copied().unwrap_or(false);
        match rules.last_mut() {
            Some((lr, ln, verbs)) if flag && *lr == r && *ln == name => verbs.push(v),
            _ => rules.push((r, name, vec![v])),
        }
    }
    let mut out = Vec::new();
    for (i, (r, name, verbs)) in rules.into_iter().enumerate() {
        let mut rule = json!({
            "apiGroups": [""],
            "resources": [RESOURCES[r]],
            "verbs": verbs.iter().map(|v| VERBS[*v]).collect::<Vec<_>>(),
        });
        if name < NAMES.len() {
            rule["resourceNames"] = json!([NAMES[name]]);
        }
        if dup.get(i % dup.len().max(1)).copied().unwrap_or(false) {
            out.push(rule.clone());
        }
        out.push(rule);
    }
    out
}

fn state(rules: Vec<Value>) -> State {
    State {
        objects: vec![
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": "agent", "namespace": "w"}}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": "r", "namespace": "t"}, "rules": rules}),
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                   "metadata": {"name": "r", "namespace": "t"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
                   "subjects": [{"kind": "ServiceAccount", "name": "agent", "namespace": "w"}]}),
        ],
        ..Default::default()
    }
}

fn grants() -> impl Strategy<Value = BTreeSet<Grant>> {
    proptest::collection::btree_set((0..VERBS.len(), 0..RESOURCES.len(), 0..=NAMES.len()), 1..14)
}

proptest! {
    #[test]
    fn the_same_grants_written_two_ways_do_not_drift(
        g in grants(),
        s1 in 0usize..50, s2 in 0usize..50,
        m1 in proptest::collection::vec(any::<bool>(), 1..8),
        m2 in proptest::collection::vec(any::<bool>(), 1..8),
        d1 in proptest::collection::vec(any::<bool>(), 1..8),
        d2 in proptest::collection::vec(any::<bool>(), 1..8),
    ) {
        let desired = state(write(&g, s1, &m1, &d1));
        let live = state(write(&g, s2, &m2, &d2));
        let r = compare(&desired, &live, Options::default()).unwrap();
        prop_assert_eq!(r.status(), Status::NoDrift, "{}", r.to_text());
    }

    #[test]
    fn removing_a_grant_is_never_widening_and_adding_one_is(
        g in grants(),
        pick in 0usize..100,
        extra in (0..VERBS.len(), 0..RESOURCES.len(), 0..=NAMES.len()),
        s in 0usize..50,
        m in proptest::collection::vec(any::<bool>(), 1..8),
    ) {
        let desired = state(write(&g, 0, &[true], &[false]));
        let removed = *g.iter().nth(pick % g.len()).unwrap();
        let mut fewer = g.clone();
        fewer.remove(&removed);
        let r = compare(&desired, &state(write(&fewer, s, &m, &[false])), Options::default()).unwrap();
        // A named grant stays covered when the same verb on every name remains.
        let covered = removed.2 < NAMES.len() && fewer.contains(&(removed.0, removed.1, NAMES.len()));
        let expected = if covered { Status::NoDrift } else { Status::NarrowingOnly };
        prop_assert_eq!(r.status(), expected, "{}", r.to_text());

        let covered = g.contains(&extra)
            || (extra.2 < NAMES.len() && g.contains(&(extra.0, extra.1, NAMES.len())));
        let mut more = g.clone();
        more.insert(extra);
        let r = compare(&desired, &state(write(&more, s, &m, &[true])), Options::default()).unwrap();
        let expected = if covered { Status::NoDrift } else { Status::Widening };
        prop_assert_eq!(r.status(), expected, "{}", r.to_text());
        prop_assert!(r.narrowing.is_empty());
    }
}
