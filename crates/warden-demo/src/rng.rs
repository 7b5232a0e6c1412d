//! A small seeded PRNG (SplitMix64).
//!
//! The scenario must be byte-identical for a given seed on every platform
//! and every release, which an external generator's stream does not promise
//! across versions. SplitMix64 is ten lines, passes BigCrush, and is more
//! than enough for jitter and noise.
//!
//! Each part of the scenario draws from its own named stream, so adding a
//! log line never shifts the numbers of a metric or an alert.

pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for `stream` under `seed`.
    pub(crate) fn new(seed: u64, stream: &str) -> Self {
        // FNV-1a of the stream name, mixed into the seed.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in stream.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Rng(seed ^ h.rotate_left(17))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        // 53 random bits: exactly representable as f64.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in `[lo, hi)`; `lo` when the range is empty.
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = hi.abs_diff(lo);
        lo.wrapping_add((self.next_u64() % span) as i64)
    }

    /// Uniform float in `[lo, hi)`.
    pub(crate) fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Roughly normal noise with mean 0 and the given standard deviation
    /// (Irwin–Hall: sum of 12 uniforms, minus 6).
    pub(crate) fn noise(&mut self, sd: f64) -> f64 {
        let sum: f64 = (0..12).map(|_| self.unit()).sum();
        (sum - 6.0) * sd
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// One of `items`; `fallback` when `items` is empty.
    pub(crate) fn pick<T: Copy>(&mut self, items: &[T], fallback: T) -> T {
        if items.is_empty() {
            return fallback;
        }
        let i = (self.next_u64() % items.len() as u64) as usize;
        items.get(i).copied().unwrap_or(fallback)
    }

    /// Random moments between `from` and `to` (seconds), in milliseconds,
    /// with gaps drawn from `gap_ms`: a crude arrival process for log
    /// lines and events.
    pub(crate) fn ticks(&mut self, from: i64, to: i64, gap_ms: (i64, i64)) -> Vec<i64> {
        let mut out = Vec::new();
        let mut ms = from * 1000 + self.range(0, gap_ms.1);
        while ms < to * 1000 {
            out.push(ms);
            ms += self.range(gap_ms.0, gap_ms.1).max(1);
        }
        out
    }

    /// `n` lowercase hex digits.
    pub(crate) fn hex(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        while s.len() < n {
            s.push_str(&format!("{:016x}", self.next_u64()));
        }
        s.truncate(n);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_stream_give_the_same_numbers() {
        let a: Vec<u64> = {
            let mut r = Rng::new(7, "x");
            (0..5).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::new(7, "x");
            (0..5).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        let mut other = Rng::new(7, "y");
        assert_ne!(a[0], other.next_u64());
    }

    #[test]
    fn range_stays_inside_its_bounds_and_tolerates_empty_ranges() {
        let mut r = Rng::new(1, "range");
        for _ in 0..1000 {
            let v = r.range(-3, 4);
            assert!((-3..4).contains(&v));
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
        }
        assert_eq!(r.range(5, 5), 5);
        assert_eq!(r.pick::<u8>(&[], 9), 9);
    }
}
