//! The pods behind each Kubernetes service, named the way a Deployment
//! names them (`<service>-<replicaset hash>-<suffix>`), with pod IPs in the
//! application network. Alerts, logs and security events share these names
//! so that a responder can follow one pod across sources.

use std::collections::BTreeSet;

use crate::rng::Rng;
use crate::topology::{CHECKOUT, FRONT_END, ORDERS_API, PAYMENTS};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pod {
    pub(crate) service: &'static str,
    pub(crate) name: String,
    pub(crate) ip: String,
}

/// Replica counts of the services that raise per-pod alerts.
const REPLICAS: &[(&str, usize)] = &[
    (FRONT_END, 10),
    (CHECKOUT, 12),
    (ORDERS_API, 8),
    (PAYMENTS, 4),
];

/// Characters Kubernetes uses in generated name suffixes (no vowels).
const SUFFIX_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

#[derive(Debug, Clone)]
pub(crate) struct Fleet {
    pods: Vec<Pod>,
}

impl Fleet {
    pub(crate) fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed, "fleet");
        let mut names = BTreeSet::new();
        let mut ips = BTreeSet::new();
        let mut pods = Vec::new();
        for &(service, replicas) in REPLICAS {
            let replicaset: String = (0..9)
                .map(|_| char::from(rng.pick(SUFFIX_ALPHABET, b'x')))
                .collect();
            while pods.iter().filter(|p: &&Pod| p.service == service).count() < replicas {
                let suffix: String = (0..5)
                    .map(|_| char::from(rng.pick(SUFFIX_ALPHABET, b'x')))
                    .collect();
                let name = format!("{service}-{replicaset}-{suffix}");
                // Pods live on the 10.10.64.0/18 node pool of the app network.
                let ip = format!("10.10.{}.{}", rng.range(64, 128), rng.range(2, 255));
                if names.insert(name.clone()) && ips.insert(ip.clone()) {
                    pods.push(Pod { service, name, ip });
                }
            }
        }
        Fleet { pods }
    }

    pub(crate) fn pods_of<'a>(&'a self, service: &'a str) -> impl Iterator<Item = &'a Pod> + 'a {
        self.pods.iter().filter(move |p| p.service == service)
    }
}
