//! Which chunks of one target still need work: the controller's bookkeeping
//! during a deploy, free of I/O so that it can be tested on its own.

use std::collections::BTreeSet;

use super::super::manifest::Manifest;

/// Times a chunk is written before the host is declared failed.
pub const MAX_WRITES: u8 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not hashed on the target yet.
    Unknown,
    /// Differs: waiting to be sent or zeroed.
    Queued,
    /// Written, waiting for its read-back hash.
    Written,
    /// Matches the manifest on the target's storage.
    Settled,
}

/// A run of consecutive chunks written by one target command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub first: usize,
    pub count: usize,
    /// All-zero chunks: zeroed on the target, nothing sent.
    pub zero: bool,
}

/// What went wrong with one chunk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the target reported chunk {0}, which the image does not have")]
    OutOfRange(usize),
    #[error(
        "chunk {index} still reads back wrong after {MAX_WRITES} writes: the target does not keep what is written (failing disk, or something else writing to it)"
    )]
    Unstable { index: usize },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub bytes_sent: u64,
    pub bytes_zeroed: u64,
    pub bytes_matched: u64,
    pub chunks_sent: usize,
    pub chunks_zeroed: usize,
    /// Chunk writes repeated after a read-back mismatch.
    pub rewrites: usize,
}

/// What each chunk of one target still needs, as its answers arrive: named
/// apart from `resources::Plan`, a resource's decision.
pub struct ChunkPlan<'a> {
    manifest: &'a Manifest,
    state: Vec<State>,
    writes: Vec<u8>,
    queue: BTreeSet<usize>,
    probed: usize,
    settled: usize,
    pub counters: Counters,
}

impl<'a> ChunkPlan<'a> {
    pub fn new(manifest: &'a Manifest) -> Self {
        let n = manifest.chunks.len();
        ChunkPlan {
            manifest,
            state: vec![State::Unknown; n],
            writes: vec![0; n],
            queue: BTreeSet::new(),
            probed: 0,
            settled: 0,
            counters: Counters::default(),
        }
    }

    fn slot(&self, index: usize) -> Result<(), PlanError> {
        if index < self.state.len() {
            Ok(())
        } else {
            Err(PlanError::OutOfRange(index))
        }
    }

    fn settle(&mut self, index: usize) {
        self.state[index] = State::Settled;
        self.settled += 1;
    }

    /// The target's hash of a chunk before any write.
    pub fn probed(&mut self, index: usize, sha256: &str) -> Result<(), PlanError> {
        self.slot(index)?;
        if self.state[index] != State::Unknown {
            return Ok(());
        }
        self.probed += 1;
        if sha256 == self.manifest.chunks[index].sha256 {
            self.counters.bytes_matched += self.manifest.chunk_len(index);
            self.settle(index);
        } else {
            self.state[index] = State::Queued;
            self.queue.insert(index);
        }
        Ok(())
    }

    /// The target's hash of a chunk re-read after it was written.
    pub fn read_back(&mut self, index: usize, sha256: &str) -> Result<(), PlanError> {
        self.slot(index)?;
        if self.state[index] != State::Written {
            return Ok(());
        }
        if sha256 == self.manifest.chunks[index].sha256 {
            self.settle(index);
        } else if self.writes[index] >= MAX_WRITES {
            return Err(PlanError::Unstable { index });
        } else {
            self.counters.rewrites += 1;
            self.state[index] = State::Queued;
            self.queue.insert(index);
        }
        Ok(())
    }

    /// Take the next run to write: consecutive queued chunks of one kind, at most
    /// `max_chunks` of them (zero runs are cheap and not limited).
    pub fn next_run(&mut self, max_chunks: usize) -> Option<Run> {
        let first = *self.queue.first()?;
        let zero = self.manifest.chunks[first].zero;
        let mut count = 1;
        while (zero || count < max_chunks.max(1))
            && self.queue.contains(&(first + count))
            && self.manifest.chunks[first + count].zero == zero
        {
            count += 1;
        }
        for index in first..first + count {
            self.queue.remove(&index);
            self.state[index] = State::Written;
            self.writes[index] += 1;
            let len = self.manifest.chunk_len(index);
            if zero {
                self.counters.bytes_zeroed += len;
                self.counters.chunks_zeroed += 1;
            } else {
                self.counters.bytes_sent += len;
                self.counters.chunks_sent += 1;
            }
        }
        Some(Run { first, count, zero })
    }

    /// Every chunk hashed on the target.
    pub fn probe_done(&self) -> bool {
        self.probed == self.state.len()
    }

    /// Every chunk matches the manifest on the target's storage.
    pub fn done(&self) -> bool {
        self.settled == self.state.len()
    }

    /// Bytes found matching, zeroed or sent at least once: the transfer's
    /// progress (read-back comes after it).
    pub fn handled_bytes(&self) -> u64 {
        let c = &self.counters;
        (c.bytes_matched + c.bytes_zeroed + c.bytes_sent).min(self.manifest.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::manifest::{Chunk, FORMAT_NAME, FORMAT_VERSION, zero_hash};

    const CS: u64 = 65536;

    /// Chunks: 0 data "a", 1 data "b", 2 zero, 3 zero, 4 data "c" (short).
    fn manifest() -> Manifest {
        let data = |c: char| Chunk {
            sha256: c.to_string().repeat(64),
            zero: false,
        };
        let zero = || Chunk {
            sha256: zero_hash(CS),
            zero: true,
        };
        Manifest {
            format: FORMAT_NAME.into(),
            version: FORMAT_VERSION,
            image: "t.img".into(),
            size: 4 * CS + 512,
            chunk_size: CS,
            sha256: "0".repeat(64),
            image_mtime_ns: 0,
            zero_chunks: 2,
            stored: None,
            chunks: vec![data('a'), data('b'), zero(), zero(), data('c')],
        }
    }

    #[test]
    fn matching_chunks_settle_and_differing_ones_are_written_in_runs() {
        let m = manifest();
        let mut p = ChunkPlan::new(&m);
        let other = "f".repeat(64);
        p.probed(0, &other).unwrap();
        p.probed(1, &other).unwrap();
        p.probed(2, &other).unwrap();
        p.probed(3, &other).unwrap();
        p.probed(4, &"c".repeat(64)).unwrap();
        assert!(p.probe_done());
        assert_eq!(p.counters.bytes_matched, 512);
        assert_eq!(
            p.next_run(8),
            Some(Run {
                first: 0,
                count: 2,
                zero: false
            })
        );
        assert_eq!(
            p.next_run(8),
            Some(Run {
                first: 2,
                count: 2,
                zero: true
            })
        );
        assert_eq!(p.next_run(8), None);
        assert_eq!(p.counters.bytes_sent, 2 * CS);
        assert_eq!(p.counters.bytes_zeroed, 2 * CS);
        assert!(!p.done());
        for (i, h) in [(0, "a".repeat(64)), (1, "b".repeat(64))] {
            p.read_back(i, &h).unwrap();
        }
        p.read_back(2, &zero_hash(CS)).unwrap();
        p.read_back(3, &zero_hash(CS)).unwrap();
        assert!(p.done());
        assert_eq!(p.handled_bytes(), m.size);
    }

    #[test]
    fn runs_respect_the_limit_and_a_bad_read_back_is_rewritten_then_fails() {
        let m = manifest();
        let mut p = ChunkPlan::new(&m);
        let other = "f".repeat(64);
        p.probed(1, &other).unwrap();
        p.probed(0, &other).unwrap();
        assert_eq!(
            p.next_run(1),
            Some(Run {
                first: 0,
                count: 1,
                zero: false
            })
        );
        assert_eq!(
            p.next_run(1),
            Some(Run {
                first: 1,
                count: 1,
                zero: false
            })
        );
        p.read_back(0, &other).unwrap();
        assert_eq!(p.counters.rewrites, 1);
        assert_eq!(
            p.next_run(8),
            Some(Run {
                first: 0,
                count: 1,
                zero: false
            })
        );
        p.read_back(0, &other).unwrap();
        assert_eq!(
            p.next_run(8),
            Some(Run {
                first: 0,
                count: 1,
                zero: false
            })
        );
        assert_eq!(
            p.read_back(0, &other),
            Err(PlanError::Unstable { index: 0 })
        );
        assert_eq!(p.counters.chunks_sent, 4);
    }

    #[test]
    fn repeated_and_foreign_reports_are_harmless_or_refused() {
        let m = manifest();
        let mut p = ChunkPlan::new(&m);
        p.probed(4, &"c".repeat(64)).unwrap();
        p.probed(4, &"c".repeat(64)).unwrap();
        assert_eq!(p.counters.bytes_matched, 512);
        p.read_back(4, &"x".repeat(64)).unwrap();
        assert_eq!(p.probed(9, "a"), Err(PlanError::OutOfRange(9)));
    }
}
