//! Checksums against vectors computed by independent implementations (Python's hashlib, zlib
//! and mmh3; see `scripts/checksum-vectors.py`), whole and streamed in uneven chunks.

use ota_core::checksum::{checksum_of, ChecksumHasher};
use ota_core::ChecksumAlgorithm;
use serde::Deserialize;
use std::collections::BTreeMap;

const VECTORS: &str = include_str!("vectors/checksums.json");

#[derive(Deserialize)]
struct Document {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    name: String,
    input: Input,
    sha256_of_input: String,
    checksums: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Input {
    Bytes {
        text: String,
    },
    #[serde(rename = "xorshift64star")]
    XorShift64Star {
        seed: String,
        multiplier: String,
        length: usize,
    },
}

fn parse_hex_u64(text: &str) -> u64 {
    let digits = text.trim_start_matches("0x");
    u64::from_str_radix(digits, 16).expect("a hex u64 in the vectors file")
}

/// xorshift64*, as documented in the vectors file: each step shifts the state and emits
/// `state * multiplier` as 8 little-endian bytes.
fn xorshift64star(seed: u64, multiplier: u64, length: usize) -> Vec<u8> {
    assert_eq!(length % 8, 0, "length must be a multiple of 8");
    let mut state = seed;
    let mut out = Vec::with_capacity(length);
    for _ in 0..length / 8 {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(multiplier).to_le_bytes());
    }
    out
}

fn generate(input: &Input) -> Vec<u8> {
    match input {
        Input::Bytes { text } => text.as_bytes().to_vec(),
        Input::XorShift64Star {
            seed,
            multiplier,
            length,
        } => xorshift64star(parse_hex_u64(seed), parse_hex_u64(multiplier), *length),
    }
}

fn vectors() -> Vec<(Vector, Vec<u8>)> {
    let doc: Document = serde_json::from_str(VECTORS).expect("valid vectors file");
    assert_eq!(doc.vectors.len(), 3, "empty, fox and random_1mib");
    doc.vectors
        .into_iter()
        .map(|v| {
            let data = generate(&v.input);
            (v, data)
        })
        .collect()
}

/// Feeds `data` to a hasher in pieces whose sizes cycle through `sizes`.
fn streamed(algorithm: ChecksumAlgorithm, data: &[u8], sizes: &[usize]) -> String {
    let mut hasher = ChecksumHasher::new(algorithm);
    let mut rest = data;
    for &size in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        hasher.update(piece);
        rest = tail;
    }
    hasher.update(&[]);
    hasher.finish().value
}

#[test]
fn inputs_are_regenerated_identically() {
    for (v, data) in vectors() {
        assert_eq!(
            checksum_of(ChecksumAlgorithm::Sha256, &data).value,
            v.sha256_of_input,
            "input {} differs from the one the script hashed",
            v.name
        );
    }
}

#[test]
fn random_input_is_one_mib() {
    let (_, data) = vectors()
        .into_iter()
        .find(|(v, _)| v.name == "random_1mib")
        .expect("random_1mib vector");
    assert_eq!(data.len(), 1024 * 1024);
}

#[test]
fn every_algorithm_matches_the_independent_implementation() {
    for (v, data) in vectors() {
        let mut seen = Vec::new();
        for (name, expected) in &v.checksums {
            let algorithm: ChecksumAlgorithm = name.parse().expect("known algorithm name");
            assert_eq!(algorithm.name(), name.as_str());
            seen.push(algorithm);
            let actual = checksum_of(algorithm, &data);
            assert_eq!(actual.algorithm, algorithm);
            assert_eq!(&actual.value, expected, "{name} of {}", v.name);
        }
        for algorithm in ChecksumAlgorithm::ALL {
            assert!(
                seen.contains(&algorithm),
                "{algorithm} missing for {}",
                v.name
            );
        }
    }
}

#[test]
fn streaming_in_uneven_chunks_matches() {
    let chunkings: [&[usize]; 5] = [&[1], &[7], &[4096], &[65537], &[1, 7, 4096, 65537, 3]];
    for (v, data) in vectors() {
        for (name, expected) in &v.checksums {
            let algorithm: ChecksumAlgorithm = name.parse().expect("known algorithm name");
            for sizes in chunkings {
                assert_eq!(
                    &streamed(algorithm, &data, sizes),
                    expected,
                    "{name} of {} in chunks of {sizes:?}",
                    v.name
                );
            }
        }
    }
}
