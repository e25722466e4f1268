//! MurmurHash3 (Austin Appleby's public-domain algorithm) as incremental hashers: the x86
//! 32-bit and the x64 128-bit variants, fed in chunks of any size.
//!
//! Both keep a partial block between calls to `update`, so splitting the input anywhere gives
//! the same hash as feeding it whole. The length mixed in at the end is the total number of
//! bytes fed (modulo 2^32 for the 32-bit variant, as in the reference implementation, whose
//! length is a 32-bit integer).

/// A partial block of `N` bytes carried between updates, and the total length fed so far.
#[derive(Clone, Debug)]
struct Blocks<const N: usize> {
    pending: [u8; N],
    pending_len: usize,
    total: u64,
}

impl<const N: usize> Blocks<N> {
    const fn new() -> Self {
        Self {
            pending: [0; N],
            pending_len: 0,
            total: 0,
        }
    }

    /// Feeds `data`, calling `block` for every complete block of `N` bytes, in order.
    fn feed(&mut self, mut data: &[u8], mut block: impl FnMut(&[u8; N])) {
        self.total = self.total.wrapping_add(data.len() as u64);
        if self.pending_len > 0 {
            let take = (N - self.pending_len).min(data.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            self.pending_len += take;
            data = &data[take..];
            if self.pending_len < N {
                return;
            }
            block(&self.pending);
            self.pending_len = 0;
        }
        let mut chunks = data.chunks_exact(N);
        for chunk in &mut chunks {
            let mut full = [0u8; N];
            full.copy_from_slice(chunk);
            block(&full);
        }
        let rest = chunks.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    /// The bytes of the last, incomplete block (fewer than `N`).
    fn tail(&self) -> &[u8] {
        &self.pending[..self.pending_len]
    }
}

/// Reads up to 8 bytes as a little-endian number (missing high bytes are zero).
fn le_u64(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .take(8)
        .enumerate()
        .fold(0, |acc, (i, &b)| acc | (u64::from(b) << (8 * i)))
}

const C1_32: u32 = 0xcc9e_2d51;
const C2_32: u32 = 0x1b87_3593;

fn mix_k32(k: u32) -> u32 {
    k.wrapping_mul(C1_32).rotate_left(15).wrapping_mul(C2_32)
}

fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// MurmurHash3 x86 32-bit, fed incrementally.
#[derive(Clone, Debug)]
pub struct Murmur3x86_32 {
    h: u32,
    blocks: Blocks<4>,
}

impl Murmur3x86_32 {
    /// A hasher with the given seed (ThingsBoard uses 0).
    pub const fn with_seed(seed: u32) -> Self {
        Self {
            h: seed,
            blocks: Blocks::new(),
        }
    }

    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) {
        let h = &mut self.h;
        self.blocks.feed(data, |block| {
            *h ^= mix_k32(u32::from_le_bytes(*block));
            *h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
        });
    }

    /// The hash of everything fed.
    pub fn finish(&self) -> u32 {
        let mut h = self.h;
        let tail = self.blocks.tail();
        if !tail.is_empty() {
            // At most 3 bytes, so the value fits in 32 bits.
            h ^= mix_k32(le_u64(tail) as u32);
        }
        // The reference mixes in the length as a 32-bit integer.
        h ^= self.blocks.total as u32;
        fmix32(h)
    }
}

impl Default for Murmur3x86_32 {
    fn default() -> Self {
        Self::with_seed(0)
    }
}

const C1_64: u64 = 0x87c3_7b91_1142_53d5;
const C2_64: u64 = 0x4cf5_ad43_2745_937f;

fn mix_k1_64(k: u64) -> u64 {
    k.wrapping_mul(C1_64).rotate_left(31).wrapping_mul(C2_64)
}

fn mix_k2_64(k: u64) -> u64 {
    k.wrapping_mul(C2_64).rotate_left(33).wrapping_mul(C1_64)
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// MurmurHash3 x64 128-bit, fed incrementally.
#[derive(Clone, Debug)]
pub struct Murmur3x64_128 {
    h1: u64,
    h2: u64,
    blocks: Blocks<16>,
}

impl Murmur3x64_128 {
    /// A hasher with the given seed (ThingsBoard uses 0).
    pub const fn with_seed(seed: u32) -> Self {
        Self {
            h1: seed as u64,
            h2: seed as u64,
            blocks: Blocks::new(),
        }
    }

    /// Feeds more bytes.
    pub fn update(&mut self, data: &[u8]) {
        let (h1, h2) = (&mut self.h1, &mut self.h2);
        self.blocks.feed(data, |block| {
            let (lo, hi) = block.split_at(8);
            *h1 ^= mix_k1_64(le_u64(lo));
            *h1 = h1
                .rotate_left(27)
                .wrapping_add(*h2)
                .wrapping_mul(5)
                .wrapping_add(0x52dc_e729);
            *h2 ^= mix_k2_64(le_u64(hi));
            *h2 = h2
                .rotate_left(31)
                .wrapping_add(*h1)
                .wrapping_mul(5)
                .wrapping_add(0x3849_5ab5);
        });
    }

    /// The hash of everything fed, as the two 64-bit halves `(h1, h2)`.
    pub fn finish(&self) -> (u64, u64) {
        let (mut h1, mut h2) = (self.h1, self.h2);
        let tail = self.blocks.tail();
        if tail.len() > 8 {
            h2 ^= mix_k2_64(le_u64(&tail[8..]));
        }
        if !tail.is_empty() {
            h1 ^= mix_k1_64(le_u64(tail));
        }
        let len = self.blocks.total;
        h1 ^= len;
        h2 ^= len;
        h1 = h1.wrapping_add(h2);
        h2 = h2.wrapping_add(h1);
        h1 = fmix64(h1);
        h2 = fmix64(h2);
        h1 = h1.wrapping_add(h2);
        h2 = h2.wrapping_add(h1);
        (h1, h2)
    }

    /// The hash as 16 bytes: `h1` little-endian then `h2` little-endian (Guava's `HashCode`
    /// bytes, Python `mmh3.hash_bytes`).
    pub fn finish_bytes(&self) -> [u8; 16] {
        let (h1, h2) = self.finish();
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&h1.to_le_bytes());
        out[8..].copy_from_slice(&h2.to_le_bytes());
        out
    }
}

impl Default for Murmur3x64_128 {
    fn default() -> Self {
        Self::with_seed(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FOX: &[u8] = b"The quick brown fox jumps over the lazy dog";

    fn m32(seed: u32, data: &[u8]) -> u32 {
        let mut h = Murmur3x86_32::with_seed(seed);
        h.update(data);
        h.finish()
    }

    fn m128(seed: u32, data: &[u8]) -> (u64, u64) {
        let mut h = Murmur3x64_128::with_seed(seed);
        h.update(data);
        h.finish()
    }

    #[test]
    fn x86_32_known_values() {
        // Values published with the reference implementation and its ports.
        assert_eq!(m32(0, b""), 0);
        assert_eq!(m32(1, b""), 0x514e_28b7);
        assert_eq!(m32(0xffff_ffff, b""), 0x81f1_6f39);
        assert_eq!(m32(0, &[0, 0, 0, 0]), 0x2362_f9de);
        assert_eq!(m32(0x9747_b28c, b"aaaa"), 0x5a97_808a);
        assert_eq!(m32(0x9747_b28c, b"Hello, world!"), 0x2488_4cba);
        assert_eq!(m32(0, FOX), 0x2e4f_f723);
        assert_eq!(m32(0, b"hello"), 0x248b_fa47);
    }

    #[test]
    fn x64_128_known_values() {
        assert_eq!(m128(0, b""), (0, 0));
        assert_eq!(m128(0, FOX), (0xe34b_bc7b_bc07_1b6c, 0x7a43_3ca9_c49a_9347));
        let mut h = Murmur3x64_128::default();
        h.update(b"hello");
        assert_eq!(
            h.finish_bytes(),
            [
                0x02, 0x9b, 0xbd, 0x41, 0xb3, 0xa7, 0xd8, 0xcb, 0x19, 0x1d, 0xae, 0x48, 0x6a, 0x90,
                0x1e, 0x5b
            ]
        );
    }

    #[test]
    fn every_tail_length_differs_from_its_neighbours() {
        // Each tail length (0..16) takes its own branch; dropping a tail byte must change
        // the hash.
        let data: Vec<u8> = (1..=40).collect();
        for len in 1..data.len() {
            assert_ne!(m32(0, &data[..len]), m32(0, &data[..len - 1]), "len {len}");
            assert_ne!(
                m128(0, &data[..len]),
                m128(0, &data[..len - 1]),
                "len {len}"
            );
        }
    }

    proptest! {
        #[test]
        fn byte_by_byte_equals_whole(data in proptest::collection::vec(any::<u8>(), 0..100), seed in any::<u32>()) {
            let mut h32 = Murmur3x86_32::with_seed(seed);
            let mut h128 = Murmur3x64_128::with_seed(seed);
            for b in &data {
                h32.update(std::slice::from_ref(b));
                h128.update(std::slice::from_ref(b));
            }
            prop_assert_eq!(h32.finish(), m32(seed, &data));
            prop_assert_eq!(h128.finish(), m128(seed, &data));
        }

        #[test]
        fn finish_does_not_consume_state(a in proptest::collection::vec(any::<u8>(), 0..40), b in proptest::collection::vec(any::<u8>(), 0..40)) {
            let mut h = Murmur3x64_128::default();
            h.update(&a);
            let _ = h.finish();
            h.update(&b);
            let whole: Vec<u8> = a.iter().chain(&b).copied().collect();
            prop_assert_eq!(h.finish(), m128(0, &whole));
        }
    }
}
