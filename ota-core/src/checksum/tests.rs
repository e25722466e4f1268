use super::*;
use proptest::prelude::*;

const FOX: &[u8] = b"The quick brown fox jumps over the lazy dog";

fn any_algorithm() -> impl Strategy<Value = ChecksumAlgorithm> {
    proptest::sample::select(ChecksumAlgorithm::ALL.to_vec())
}

/// Splits `data` at the given cut points (taken modulo the length, sorted), keeping empty
/// pieces: they must be harmless too.
fn split_at_cuts<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for p in points {
        pieces.push(&data[start..p]);
        start = p;
    }
    pieces.push(&data[start..]);
    pieces
}

#[test]
fn encodings_follow_thingsboard() {
    // CRC32 of FOX is 0x414fa339 and MURMUR3_32 is 0x2e4ff723: written little-endian first.
    assert_eq!(checksum_of(ChecksumAlgorithm::Crc32, FOX).value, "39a34f41");
    assert_eq!(
        checksum_of(ChecksumAlgorithm::Murmur3_32, FOX).value,
        "23f74f2e"
    );
    assert_eq!(
        checksum_of(ChecksumAlgorithm::Murmur3_128, FOX).value,
        "6c1b07bc7bbc4be347939ac4a93c437a"
    );
    assert_eq!(
        checksum_of(ChecksumAlgorithm::Md5, FOX).value,
        "9e107d9d372bb6826bd81d3542a419d6"
    );
    assert_eq!(
        checksum_of(ChecksumAlgorithm::Sha256, b"").value,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

#[test]
fn every_checksum_has_its_algorithms_length_and_validates() {
    for alg in ChecksumAlgorithm::ALL {
        let c = checksum_of(alg, FOX);
        assert_eq!(c.algorithm, alg);
        assert_eq!(c.value.len(), alg.hex_len(), "{alg}");
        assert_eq!(Checksum::new(alg, &c.value), Ok(c.clone()));
        assert_eq!(ChecksumHasher::new(alg).algorithm(), alg);
    }
}

#[test]
fn new_trims_and_lowercases() {
    let c = Checksum::new(ChecksumAlgorithm::Crc32, "  39A34F41\n").expect("valid");
    assert_eq!(c.value, "39a34f41");
    assert_eq!(c.algorithm, ChecksumAlgorithm::Crc32);
    assert_eq!(c.to_string(), "CRC32:39a34f41");
}

#[test]
fn new_rejects_wrong_length_with_a_clear_message() {
    let err = Checksum::new(ChecksumAlgorithm::Sha256, "abcd").expect_err("too short");
    assert_eq!(
        err,
        InvalidChecksum::WrongLength {
            algorithm: ChecksumAlgorithm::Sha256,
            value: "abcd".into(),
            expected: 64,
            actual: 4,
        }
    );
    assert_eq!(
        err.to_string(),
        "SHA256 checksum \"abcd\" has 4 hex digits; SHA256 needs 64"
    );
    assert!(matches!(
        Checksum::new(ChecksumAlgorithm::Md5, ""),
        Err(InvalidChecksum::WrongLength { actual: 0, .. })
    ));
    assert!(Checksum::new(ChecksumAlgorithm::Crc32, "39a34f4100").is_err());
}

#[test]
fn new_rejects_non_hex_with_the_character() {
    let err = Checksum::new(ChecksumAlgorithm::Crc32, "39a34g41").expect_err("not hex");
    assert_eq!(
        err,
        InvalidChecksum::NotHex {
            algorithm: ChecksumAlgorithm::Crc32,
            value: "39a34g41".into(),
            character: 'g',
            position: 5,
        }
    );
    assert!(err.to_string().contains("'g' at position 5"), "{err}");
    // Inner whitespace and non-ASCII digits are not hex either.
    assert!(Checksum::new(ChecksumAlgorithm::Crc32, "39a3 f41").is_err());
    assert!(Checksum::new(ChecksumAlgorithm::Crc32, "39a34f4١").is_err());
}

#[test]
fn content_hasher_without_expected_computes_sha256_once() {
    let mut h = ContentHasher::new(None);
    h.update(b"The quick brown fox ");
    h.update(b"jumps over the lazy dog");
    assert_eq!(h.bytes_seen(), 43);
    let d = h.finish().expect("nothing to mismatch");
    assert_eq!(d.size, 43);
    assert_eq!(d.checksum, checksum_of(ChecksumAlgorithm::Sha256, FOX));
    assert_eq!(d.sha256, d.checksum.value);
}

#[test]
fn content_hasher_computes_sha256_beside_another_algorithm() {
    let expected = checksum_of(ChecksumAlgorithm::Murmur3_128, FOX);
    let mut h = ContentHasher::new(Some(expected.clone()));
    h.update(FOX);
    let d = h.finish().expect("matches");
    assert_eq!(d.checksum, expected);
    assert_eq!(d.sha256, checksum_of(ChecksumAlgorithm::Sha256, FOX).value);
    assert_eq!(d.size, FOX.len() as u64);
}

#[test]
fn content_hasher_accepts_an_expected_value_in_upper_case() {
    let c = checksum_of(ChecksumAlgorithm::Md5, FOX);
    let upper = Checksum {
        algorithm: c.algorithm,
        value: c.value.to_uppercase(),
    };
    let mut h = ContentHasher::new(Some(upper));
    h.update(FOX);
    assert_eq!(h.finish().expect("case does not matter").checksum, c);
}

#[test]
fn mismatch_names_both_values() {
    let expected = checksum_of(ChecksumAlgorithm::Crc32, b"something else");
    let mut h = ContentHasher::new(Some(expected.clone()));
    h.update(FOX);
    let err = h.finish().expect_err("different content");
    assert_eq!(
        err,
        ChecksumMismatch {
            algorithm: ChecksumAlgorithm::Crc32,
            expected: expected.value.clone(),
            actual: "39a34f41".into(),
            size: 43,
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "content does not match its CRC32 checksum: expected {}, computed 39a34f41 over \
             43 bytes",
            expected.value
        )
    );
}

proptest! {
    #[test]
    fn any_split_gives_the_whole_checksum(
        alg in any_algorithm(),
        data in proptest::collection::vec(any::<u8>(), 0..300),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut h = ChecksumHasher::new(alg);
        for piece in split_at_cuts(&data, &cuts) {
            h.update(piece);
        }
        prop_assert_eq!(h.finish(), checksum_of(alg, &data));
    }

    #[test]
    fn content_hasher_with_a_wrong_value_reports_both(
        alg in any_algorithm(),
        data in proptest::collection::vec(any::<u8>(), 0..200),
        flip in any::<usize>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let actual = checksum_of(alg, &data);
        // Change one hex digit: a well-formed value that is not the content's.
        let mut digits: Vec<char> = actual.value.chars().collect();
        let i = flip % digits.len();
        digits[i] = if digits[i] == '0' { '1' } else { '0' };
        let wrong: String = digits.into_iter().collect();
        let expected = Checksum::new(alg, &wrong).expect("well-formed");
        let mut h = ContentHasher::new(Some(expected));
        for piece in split_at_cuts(&data, &cuts) {
            h.update(piece);
        }
        prop_assert_eq!(h.bytes_seen(), data.len() as u64);
        let err = h.finish().expect_err("a wrong value never matches");
        prop_assert_eq!(err.algorithm, alg);
        prop_assert_eq!(&err.expected, &wrong);
        prop_assert_eq!(&err.actual, &actual.value);
        prop_assert_eq!(err.size, data.len() as u64);
        let message = err.to_string();
        prop_assert!(message.contains(&wrong) && message.contains(&actual.value), "{}", message);
    }

    #[test]
    fn content_hasher_with_the_right_value_matches(
        alg in any_algorithm(),
        data in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let expected = checksum_of(alg, &data);
        let mut h = ContentHasher::new(Some(expected.clone()));
        h.update(&data);
        let d = h.finish().expect("the right value matches");
        prop_assert_eq!(d.checksum, expected);
        prop_assert_eq!(d.sha256, checksum_of(ChecksumAlgorithm::Sha256, &data).value);
    }

    #[test]
    fn names_parse_in_any_case_mix(
        alg in any_algorithm(),
        upper in proptest::collection::vec(any::<bool>(), 11),
    ) {
        let mixed: String = alg
            .name()
            .chars()
            .zip(upper.iter().cycle())
            .map(|(c, &u)| if u { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
            .collect();
        prop_assert_eq!(mixed.parse::<ChecksumAlgorithm>(), Ok(alg));
    }

    #[test]
    fn new_accepts_any_case_of_a_valid_value(
        alg in any_algorithm(),
        data in proptest::collection::vec(any::<u8>(), 0..50),
    ) {
        let c = checksum_of(alg, &data);
        prop_assert_eq!(Checksum::new(alg, &c.value.to_uppercase()), Ok(c));
    }
}
