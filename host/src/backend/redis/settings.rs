//! `[redis]` as the backend takes it.

use std::time::Duration;

/// Settings of the Redis backend (`[redis]` in the host config). Its `Debug` leaves out
/// the credentials in the URLs.
#[derive(Clone)]
pub struct RedisSettings {
    /// `redis://[user:password@]host:port[/db]`. Never logged (it may hold a password).
    pub url: String,
    /// Prefix of every key, so several deployments can share one Redis.
    pub key_prefix: String,
    /// How long a node's lease lives without renewal; its slots expire after it.
    pub lease_ttl: Duration,
    /// Longest blocking read; also how often an idle reader checks in.
    pub block: Duration,
    /// Most entries read per stream per round.
    pub read_count: usize,
    /// Reader tasks (and connections) per host, each following a share of the companies.
    pub readers: usize,
    /// Readers wait on announcements rather than blocking XREADs (always on a cluster).
    pub announced: bool,
    /// Seed nodes of a Redis Cluster (`redis://host:port` each); empty: `url` is one Redis.
    pub cluster: Vec<String>,
    /// Sentinels (`redis://host:port` each) that name the master; then `url`'s host is
    /// the master's name (`redis://:password@mymaster/0`). Empty: `url` is the address.
    pub sentinels: Vec<String>,
    /// Replicas that must confirm a publish before it is acknowledged (`WAIT`); 0: none.
    pub min_replicas_ack: u32,
    /// Longest a publish waits for them.
    pub min_replicas_timeout: Duration,
}

impl std::fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        /// `redis://…@host:port/db` without what is before the `@`.
        fn hidden(u: &str) -> String {
            match (u.split_once("://"), u.rsplit_once('@')) {
                (Some((scheme, _)), Some((_, rest))) => format!("{scheme}://…@{rest}"),
                _ => u.to_owned(),
            }
        }
        f.debug_struct("RedisSettings")
            .field("url", &hidden(&self.url))
            .field("cluster", &self.cluster.iter().map(|u| hidden(u)).collect::<Vec<_>>())
            .field(
                "sentinels",
                &self.sentinels.iter().map(|u| hidden(u)).collect::<Vec<_>>(),
            )
            .field("key_prefix", &self.key_prefix)
            .field("readers", &self.readers)
            .field("announced", &self.announced)
            .field("min_replicas_ack", &self.min_replicas_ack)
            .finish_non_exhaustive()
    }
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            key_prefix: "sse".into(),
            lease_ttl: Duration::from_secs(15),
            block: Duration::from_secs(5),
            read_count: 1000,
            readers: 1,
            announced: true,
            cluster: Vec::new(),
            sentinels: Vec::new(),
            min_replicas_ack: 0,
            min_replicas_timeout: Duration::from_millis(1000),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn settings_debug_leaves_out_passwords() {
        let settings = super::RedisSettings {
            url: "redis://:hunter2@mymaster/0".into(),
            sentinels: vec!["redis://user:s3cret@10.0.0.7:26379".into()],
            ..Default::default()
        };
        let text = format!("{settings:?}");
        assert!(!text.contains("hunter2") && !text.contains("s3cret"), "{text}");
        assert!(text.contains("mymaster/0") && text.contains("10.0.0.7:26379"), "{text}");
    }
}
