//! Small sampling helpers over the one seeded generator.
//!
//! Every random choice in the module goes through a `&mut Rng` passed down from `generate`,
//! so the output depends only on the options and on the order of calls here.

use rand::Rng as _;

/// The only source of randomness: ChaCha8 is portable across platforms and versions of rand 0.8,
/// which the determinism promise (same options → same bytes) relies on.
pub(super) type Rng = rand_chacha::ChaCha8Rng;

pub(super) fn chance(rng: &mut Rng, probability: f64) -> bool {
    rng.gen::<f64>() < probability
}

/// Uniform in `[low, high)`.
pub(super) fn uniform(rng: &mut Rng, low: f64, high: f64) -> f64 {
    low + (high - low) * rng.gen::<f64>()
}

/// Uniform integer in `[low, high]`.
pub(super) fn between(rng: &mut Rng, low: i64, high: i64) -> i64 {
    if high <= low {
        return low;
    }
    rng.gen_range(low..=high)
}

pub(super) fn index(rng: &mut Rng, len: usize) -> usize {
    rng.gen_range(0..len)
}

pub(super) fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[index(rng, items.len())]
}

/// Picks from `(item, weight)` pairs in proportion to the weights.
pub(super) fn weighted<'a, T>(rng: &mut Rng, items: &'a [(T, u32)]) -> &'a T {
    let total: u32 = items.iter().map(|(_, weight)| weight).sum();
    let mut ticket = rng.gen_range(0..total);
    for (item, weight) in items {
        if ticket < *weight {
            return item;
        }
        ticket -= weight;
    }
    &items[items.len() - 1].0
}

/// Standard normal draw (Box–Muller); the generator needs few enough that caching the pair
/// isn't worth the state.
pub(super) fn normal(rng: &mut Rng, mean: f64, deviation: f64) -> f64 {
    let u1 = 1.0 - rng.gen::<f64>();
    let u2 = rng.gen::<f64>();
    mean + deviation * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Log-normal with the given median, clamped; call and meeting lengths have this long right tail.
pub(super) fn log_normal(rng: &mut Rng, median: f64, sigma: f64, low: f64, high: f64) -> f64 {
    (median.ln() + normal(rng, 0.0, sigma)).exp().clamp(low, high)
}

/// A random (version 4) GUID, lower case and hyphenated as Graph writes ids.
pub(super) fn guid(rng: &mut Rng) -> String {
    let bytes: [u8; 16] = rng.gen();
    let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let mut buffer = uuid::Uuid::encode_buffer();
    uuid.hyphenated().encode_lower(&mut buffer).to_owned()
}

/// `count` upper-case letters and digits, for machine names.
pub(super) fn alphanumeric(rng: &mut Rng, count: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
    (0..count).map(|_| char::from(*pick(rng, ALPHABET))).collect()
}

/// `pattern` with every `#` replaced by a random digit: `+1425555####` → `+14255550172`.
pub(super) fn digits(rng: &mut Rng, pattern: &str) -> String {
    pattern
        .chars()
        .map(|c| {
            if c == '#' {
                char::from(b'0' + rng.gen_range(0..10u8))
            } else {
                c
            }
        })
        .collect()
}

pub(super) fn u32_string(rng: &mut Rng) -> String {
    rng.gen_range(100_000_000u32..4_000_000_000).to_string()
}

/// A MAC address in the dashed upper-case form Windows reports.
pub(super) fn mac_address(rng: &mut Rng) -> String {
    let mut bytes: [u8; 6] = rng.gen();
    // Clear the multicast bit so the address could belong to a real adapter.
    bytes[0] &= 0xFC;
    hex_bytes(&bytes, b"0123456789ABCDEF", '-')
}

/// A Wi-Fi BSSID in lower-case colon form.
pub(super) fn bssid(rng: &mut Rng) -> String {
    let bytes: [u8; 6] = rng.gen();
    hex_bytes(&bytes, b"0123456789abcdef", ':')
}

fn hex_bytes(bytes: &[u8], digits: &[u8; 16], separator: char) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (position, byte) in bytes.iter().enumerate() {
        if position > 0 {
            out.push(separator);
        }
        out.push(char::from(digits[usize::from(byte >> 4)]));
        out.push(char::from(digits[usize::from(byte & 0x0F)]));
    }
    out
}
