//! State kept hot in memory so the pages never scan for it: the latest reading per site.
//! Written once per committed batch by the store writer, read by the web.

use super::Latest;
use std::collections::HashMap;
use std::sync::RwLock;

#[derive(Debug, Default)]
pub struct Hot {
    latest: RwLock<HashMap<String, Latest>>,
}

impl Hot {
    /// Replace the entries of a committed batch (the writer only passes newer readings).
    pub fn update(&self, entries: impl IntoIterator<Item = (String, Latest)>) {
        let mut map = self.latest.write().unwrap_or_else(|p| p.into_inner());
        for (site, latest) in entries {
            map.insert(site, latest);
        }
    }

    pub fn latest(&self, site: &str) -> Option<Latest> {
        let map = self.latest.read().unwrap_or_else(|p| p.into_inner());
        map.get(site).cloned()
    }

    pub fn all(&self) -> HashMap<String, Latest> {
        self.latest
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}
