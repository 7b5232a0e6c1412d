//! The shop's service graph, and the islands that host the unrelated alerts.
//!
//! Two database paths exist on purpose: `checkout-api` and `orders-api`
//! reach `orders-db` (a VM in the database subnet) through the core firewall,
//! while `recommendations` reaches `catalog-db` inside the cluster, not via
//! the firewall. A correct diagnosis has to tell these apart: only the first
//! path is affected.

use warden_core::TopologyHint;
use warden_core::telemetry::{TopologyEdge, TopologyGraph, TopologyNode};

pub const FIREWALL: &str = "fw-core-01";
pub const FRONT_END: &str = "front-end";
pub const CHECKOUT: &str = "checkout-api";
pub const ORDERS_API: &str = "orders-api";
pub const PAYMENTS: &str = "payments-api";
pub const RECOMMENDATIONS: &str = "recommendations";
pub const CATALOG_DB: &str = "catalog-db";
pub const ORDERS_DB: &str = "orders-db";

/// Unrelated islands: no edge connects them to anything.
pub const BATCH_HOST: &str = "batch-reporting";
pub const IDENTITY_GATEWAY: &str = "identity-gateway";
pub const LOG_CLUSTER: &str = "log-cluster";
pub const BASTION: &str = "bastion";

pub const SHOP_NAMESPACE: &str = "shop";
pub const PAYMENTS_NAMESPACE: &str = "payments";

/// The firewall rule the change modifies, and the networks it joins.
pub const FIREWALL_RULE: &str = "APP-DB-PG-5432";
pub const APP_CIDR: &str = "10.10.0.0/16";
pub const DB_CIDR: &str = "10.20.0.0/24";
pub const ORDERS_DB_IP: &str = "10.20.0.11";
pub const POSTGRES_PORT: u16 = 5432;
pub const HTTP_PORT: u16 = 8080;

/// `(id, kind, domain, namespace)` of every node.
const NODES: &[(&str, &str, &str, Option<&str>)] = &[
    (FRONT_END, "service", "application", Some(SHOP_NAMESPACE)),
    (CHECKOUT, "service", "application", Some(SHOP_NAMESPACE)),
    (ORDERS_API, "service", "application", Some(SHOP_NAMESPACE)),
    (PAYMENTS, "service", "application", Some(PAYMENTS_NAMESPACE)),
    (
        RECOMMENDATIONS,
        "service",
        "application",
        Some(SHOP_NAMESPACE),
    ),
    (CATALOG_DB, "database", "database", Some(SHOP_NAMESPACE)),
    (ORDERS_DB, "database", "database", None),
    (FIREWALL, "firewall", "network", None),
    (BATCH_HOST, "host", "application", None),
    (IDENTITY_GATEWAY, "service", "security", Some("identity")),
    (LOG_CLUSTER, "service", "application", Some("logging")),
    (BASTION, "host", "security", None),
];

/// `(from, to, via firewall, port)`: `from` calls `to`.
const EDGES: &[(&str, &str, bool, u16)] = &[
    (FRONT_END, CHECKOUT, false, HTTP_PORT),
    (FRONT_END, ORDERS_API, false, HTTP_PORT),
    (FRONT_END, RECOMMENDATIONS, false, HTTP_PORT),
    (CHECKOUT, ORDERS_DB, true, POSTGRES_PORT),
    (ORDERS_API, ORDERS_DB, true, POSTGRES_PORT),
    (CHECKOUT, PAYMENTS, false, HTTP_PORT),
    (RECOMMENDATIONS, CATALOG_DB, false, POSTGRES_PORT),
];

/// The namespace of a node, if it is a Kubernetes workload.
pub fn namespace_of(id: &str) -> Option<&'static str> {
    NODES.iter().find(|n| n.0 == id).and_then(|n| n.3)
}

/// `topology.json`.
pub fn graph() -> TopologyGraph {
    TopologyGraph {
        nodes: NODES
            .iter()
            .map(|&(id, kind, domain, namespace)| TopologyNode {
                id: id.to_string(),
                kind: kind.to_string(),
                domain: domain.to_string(),
                namespace: namespace.map(str::to_string),
            })
            .collect(),
        edges: EDGES
            .iter()
            .map(|&(from, to, via_firewall, port)| TopologyEdge {
                from: from.to_string(),
                to: to.to_string(),
                via: if via_firewall {
                    vec![FIREWALL.to_string()]
                } else {
                    Vec::new()
                },
                port: Some(port),
            })
            .collect(),
    }
}

/// The graph as dependency hints: every edge, plus `from → device` for each
/// network device on its path, because a caller depends on the firewall its
/// traffic crosses. Without that hop, alerts raised on the firewall would
/// have no topological link to the services it breaks.
pub fn hints() -> Vec<TopologyHint> {
    let mut hints = Vec::new();
    for edge in graph().edges {
        for device in &edge.via {
            hints.push(TopologyHint {
                from: edge.from.clone(),
                to: device.clone(),
            });
        }
        hints.push(TopologyHint {
            from: edge.from,
            to: edge.to,
        });
    }
    hints.sort();
    hints.dedup();
    hints
}
