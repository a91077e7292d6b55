//! A DNS resolver for webhook hosts whose answers a test scripts, to play a name that resolves
//! one way when it is checked and another when it is connected to.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Each lookup gets the next answer; the last one repeats.
#[derive(Clone)]
pub struct ScriptedDns {
    answers: Arc<Vec<IpAddr>>,
    lookups: Arc<AtomicUsize>,
}

impl ScriptedDns {
    pub fn new(answers: &[&str]) -> Self {
        assert!(!answers.is_empty());
        Self {
            answers: Arc::new(answers.iter().map(|a| a.parse().expect("an IP address")).collect()),
            lookups: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

impl Resolve for ScriptedDns {
    fn resolve(&self, _: Name) -> Resolving {
        let n = self.lookups.fetch_add(1, Ordering::SeqCst);
        let answer = self.answers[n.min(self.answers.len() - 1)];
        Box::pin(async move { Ok(Box::new(std::iter::once(SocketAddr::new(answer, 0))) as Addrs) })
    }
}
