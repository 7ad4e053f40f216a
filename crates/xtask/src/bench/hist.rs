//! A latency histogram in the manner of HdrHistogram, in a few lines: log-linear buckets,
//! 128 per power of two, so any value is reported within 1/128 (< 0.8 %) of itself. Recording
//! is an index computation and an increment: no allocation, no sorting, nothing that would
//! add generator overhead per message. 7,424 counters (58 KiB) cover every `u64` nanosecond.

const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Histogram {
    pub fn new() -> Self {
        Self { counts: vec![0; BUCKETS], total: 0 }
    }

    #[inline]
    pub fn record(&mut self, nanos: u64) {
        self.counts[index(nanos)] += 1;
        self.total += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    /// The value at quantile `q` (0–1): the highest value of the bucket holding it, so the
    /// answer errs high, never low. 0 when nothing was recorded.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return highest(i);
            }
        }
        highest(BUCKETS - 1)
    }
}

/// Values below 128 get a bucket each; above, the top 8 significant bits pick the bucket.
#[inline]
fn index(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= SUB_BITS
    let mantissa = v >> (exp - SUB_BITS); // in SUB..2*SUB
    ((exp - SUB_BITS + 1) as u64 * SUB + (mantissa - SUB)) as usize
}

/// The highest value that lands in bucket `i`.
fn highest(i: usize) -> u64 {
    let (group, offset) = (i as u64 / SUB, i as u64 % SUB);
    if group == 0 {
        return offset;
    }
    let shift = group - 1;
    let lowest = (SUB + offset) << shift;
    lowest.saturating_add((1u64 << shift) - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        let mut v = 0u64;
        while v < 1 << 40 {
            let i = index(v);
            assert!(highest(i) >= v, "{v}");
            assert!(i == 0 || highest(i - 1) < v, "{v}");
            assert!(highest(i) - v <= v / 128, "{v}");
            v = v * 9 / 8 + 1;
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::new();
        for v in 1..=1000 {
            h.record(v * 1000);
        }
        let p99 = h.quantile(0.99);
        assert!((990_000..=990_000 + 990_000 / 128).contains(&p99), "{p99}");
        assert!((1000..=1007).contains(&h.quantile(0.0)));
    }
}
