//! What the crash loop knows the server promised (each chat's acknowledged messages, the sends
//! still unanswered, what its streams showed), and the check of what the server serves after a
//! restart against it, which tallies every broken promise in a [`Report`].

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::text_of;

/// A send answered 200: where it was stored, and when the answer came.
pub struct Ack {
    pub seq: u64,
    pub at: Instant,
}

pub struct ChatModel {
    pub id: String,
    /// client id -> its acknowledgement.
    pub acked: HashMap<String, Ack>,
    /// Sent without a 200 (an error or no answer): retried with the same client id next cycle.
    pub pending: BTreeSet<String>,
    /// The client ids the streams showed, by seq (index 0 is seq 1), each once and in order.
    pub streamed: Vec<String>,
}

impl ChatModel {
    pub fn new(id: String) -> ChatModel {
        ChatModel { id, acked: HashMap::new(), pending: BTreeSet::new(), streamed: Vec::new() }
    }
}

/// An acknowledged message missing after a restart.
pub struct Lost {
    pub chat: usize,
    pub client_id: String,
    pub seq: u64,
    /// How long before the cut its 200 came.
    pub before_cut: Duration,
}

/// Every broken promise found, and the figures of the run.
#[derive(Default)]
pub struct Report {
    pub cycles: usize,
    /// Distinct messages acknowledged (a 200, first or on a retry).
    pub acked: usize,
    /// Unanswered sends retried with their client id after a restart, and answered 200.
    pub retried: usize,
    pub lost: Vec<Lost>,
    /// A client id stored more than once.
    pub doubled: Vec<String>,
    /// An acknowledged message at another seq than acknowledged, or with the wrong text.
    pub misplaced: Vec<String>,
    /// Seqs not exactly 1..=N.
    pub gaps: Vec<String>,
    /// A stored message nobody sent.
    pub phantoms: Vec<String>,
    /// A chat whose history did not answer 200 (a 503: held out of service).
    pub unavailable: Vec<String>,
    /// An error answer to a send or a stream before the cut, when the server had no reason to.
    pub refused: Vec<String>,
    /// A stream that skipped, repeated or reordered a seq.
    pub stream_order: Vec<String>,
    /// A stream that showed a message the server no longer has at that seq after a restart.
    pub stream_lost: Vec<String>,
}

impl Report {
    /// Lost messages acknowledged more than `window` before their cut.
    pub fn lost_older_than(&self, window: Duration) -> Vec<&Lost> {
        self.lost.iter().filter(|l| l.before_cut > window).collect()
    }

    /// Nothing wrong, except what `allow_loss` lets through (lost messages acknowledged within
    /// that long before the cut, and streams that showed them).
    pub fn clean(&self, allow_loss: Option<Duration>) -> bool {
        let losses_ok = match allow_loss {
            Some(window) => self.lost_older_than(window).is_empty(),
            None => self.lost.is_empty() && self.stream_lost.is_empty(),
        };
        losses_ok
            && self.doubled.is_empty()
            && self.misplaced.is_empty()
            && self.gaps.is_empty()
            && self.phantoms.is_empty()
            && self.unavailable.is_empty()
            && self.refused.is_empty()
            && self.stream_order.is_empty()
    }

    /// The figures, then the first few of each kind of problem.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{} cycles, {} messages acknowledged ({} after a retry): lost {}, doubled {}, misplaced {}, gaps {}, \
             phantoms {}, chats unavailable {}, refused {}, stream order {}, streamed then lost {}",
            self.cycles,
            self.acked,
            self.retried,
            self.lost.len(),
            self.doubled.len(),
            self.misplaced.len(),
            self.gaps.len(),
            self.phantoms.len(),
            self.unavailable.len(),
            self.refused.len(),
            self.stream_order.len(),
            self.stream_lost.len(),
        );
        let mut sorted: Vec<&Lost> = self.lost.iter().collect();
        sorted.sort_by_key(|l| (l.chat, l.seq));
        let lost: Vec<String> = sorted
            .into_iter()
            .map(|l| {
                format!(
                    "chat {} seq {} ({}), acknowledged {:?} before the cut",
                    l.chat, l.seq, l.client_id, l.before_cut
                )
            })
            .collect();
        for (kind, items) in [
            ("lost", &lost),
            ("doubled", &self.doubled),
            ("misplaced", &self.misplaced),
            ("gaps", &self.gaps),
            ("phantoms", &self.phantoms),
            ("unavailable", &self.unavailable),
            ("refused", &self.refused),
            ("stream order", &self.stream_order),
            ("streamed then lost", &self.stream_lost),
        ] {
            for item in items.iter().take(5) {
                let _ = write!(out, "\n  {kind}: {item}");
            }
            if items.len() > 5 {
                let _ = write!(out, "\n  {kind}: ... and {} more", items.len() - 5);
            }
        }
        out
    }
}

/// Checks chat number `n` as served after a restart (`history`, or the error it answered)
/// against `model`, after the cut at `cut`. Lost messages leave the model (they are not sent
/// again), and so does what the streams showed from the first seq that no longer matches.
/// A chat the server does not know (404) lost everything acknowledged in it, its creation too.
pub fn check(
    n: usize,
    model: &mut ChatModel,
    history: Result<Vec<Value>, (u16, String)>,
    cut: Instant,
    report: &mut Report,
) {
    let history = match history {
        Ok(history) => history,
        Err((status, why)) => {
            report.unavailable.push(format!("chat {n} ({}): {why}", model.id));
            if status != 404 {
                return;
            }
            Vec::new()
        }
    };
    let mut stored: HashMap<String, u64> = HashMap::new();
    let mut by_seq: Vec<String> = Vec::with_capacity(history.len());
    for (i, m) in history.iter().enumerate() {
        let client_id = m["client_id"].as_str().unwrap_or("").to_owned();
        let seq = m["seq"].as_u64().unwrap_or(0);
        if seq != i as u64 + 1 {
            report.gaps.push(format!("chat {n}: message {} of the history has seq {seq}: {m}", i + 1));
        }
        if m["chat_id"] != model.id.as_str() || m["text"] != text_of(&client_id).as_str() {
            report.misplaced.push(format!("chat {n}: seq {seq} holds the wrong message: {m}"));
        }
        if let Some(first) = stored.insert(client_id.clone(), seq) {
            report.doubled.push(format!("chat {n}: {client_id} stored at seq {first} and seq {seq}"));
        }
        if !model.acked.contains_key(&client_id) && !model.pending.contains(&client_id) {
            report.phantoms.push(format!("chat {n}: seq {seq} holds {client_id}, never sent"));
        }
        by_seq.push(client_id);
    }
    let mut lost: Vec<String> = Vec::new();
    for (client_id, ack) in &model.acked {
        match stored.get(client_id) {
            None => {
                let before_cut = cut.saturating_duration_since(ack.at);
                report.lost.push(Lost { chat: n, client_id: client_id.clone(), seq: ack.seq, before_cut });
                lost.push(client_id.clone());
            }
            Some(&seq) if seq != ack.seq => report
                .misplaced
                .push(format!("chat {n}: {client_id} was acknowledged at seq {} but is stored at seq {seq}", ack.seq)),
            Some(_) => {}
        }
    }
    for client_id in lost {
        model.acked.remove(&client_id);
    }
    if let Some(k) = (0..model.streamed.len()).find(|&k| by_seq.get(k) != Some(&model.streamed[k])) {
        let now = by_seq.get(k).map_or("nothing", String::as_str);
        report.stream_lost.push(format!(
            "chat {n}: a stream showed {} at seq {}, which now holds {now} ({} later seqs shown too)",
            model.streamed[k],
            k + 1,
            model.streamed.len() - k - 1
        ));
        model.streamed.truncate(k);
    }
}

/// Adds what one stream connection, opened with `since`, showed (seq, client id) to `model`.
pub fn merge_stream(n: usize, model: &mut ChatModel, since: u64, frames: &[(u64, String)], report: &mut Report) {
    for (expected, (seq, client_id)) in (since + 1..).zip(frames) {
        if *seq != expected {
            let why = format!("chat {n}: a stream opened with since={since} showed seq {seq} where {expected} was due");
            return report.stream_order.push(why);
        }
        model.streamed.push(client_id.clone());
    }
}
