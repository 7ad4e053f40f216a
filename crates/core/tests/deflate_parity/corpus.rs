//! The permessage-deflate corpus: JSON chat messages, binary attachments with repeats, random
//! bytes, the 70 KiB pattern of the ws-parity issue, and a mix. Byte for byte the corpus of
//! `npm/test/fixtures/deflate-corpus.mjs`; the fixture records each group's length and hash.

/// mulberry32: a 32-bit generator that JavaScript computes with the same bits.
pub struct Rng(u32);

impl Rng {
    pub fn new(seed: u32) -> Self {
        Self(seed)
    }
    pub fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(0x6D2B_79F5);
        let a = self.0;
        let mut t = (a ^ (a >> 15)).wrapping_mul(1 | a);
        t = t.wrapping_add((t ^ (t >> 7)).wrapping_mul(61 | t)) ^ t;
        t ^ (t >> 14)
    }
    pub fn pick(&mut self, n: u32) -> u32 {
        self.next() % n
    }
}

const WORDS: [&str; 32] = [
    "the", "meeting", "is", "at", "noon", "tomorrow", "please", "bring", "your", "laptop", "and", "notes", "we",
    "shipped", "release", "today", "thanks", "everyone", "for", "review", "build", "failed", "again", "on", "main",
    "fixed", "it", "lunch", "anyone", "coffee", "deploy", "friday",
];
const ROOMS: [&str; 6] = ["general", "random", "dev", "ops", "design", "sales"];
const NAMES: [&str; 12] = ["ana", "bo", "chen", "dara", "eli", "fay", "gus", "hana", "ivo", "jun", "kai", "lea"];
const EMOJI: [&str; 5] = ["thumbsup", "heart", "tada", "eyes", "rocket"];

/// One JSON chat message (ASCII).
pub fn chat(rng: &mut Rng, i: u32) -> Vec<u8> {
    let words = if rng.pick(8) == 0 { 100 + rng.pick(300) } else { 3 + rng.pick(60) };
    let mut text = String::new();
    for w in 0..words {
        if w > 0 {
            text.push(' ');
        }
        text.push_str(WORDS[rng.pick(32) as usize]);
    }
    let room = ROOMS[rng.pick(6) as usize];
    let (uid, name) = (1000 + rng.pick(500), NAMES[rng.pick(12) as usize]);
    let mut reactions = Vec::new();
    for _ in 0..rng.pick(4) {
        let (e, c) = (EMOJI[rng.pick(5) as usize], rng.pick(20));
        reactions.push(format!("{{\"emoji\":\"{e}\",\"count\":{c}}}"));
    }
    format!(
        "{{\"type\":\"message\",\"id\":{i},\"room\":\"{room}\",\"user\":{{\"id\":{uid},\"name\":\"{name}\"}},\"ts\":{},\"text\":\"{text}\",\"reactions\":[{}]}}",
        1_700_000_000_000u64 + i as u64 * 1371,
        reactions.join(",")
    )
    .into_bytes()
}

/// A binary attachment: blocks from a small shared set, runs, and a little noise.
pub fn attachment(rng: &mut Rng, blocks: &[Vec<u8>]) -> Vec<u8> {
    let size = (4096 + rng.pick(64 * 1024)) as usize;
    let mut v = Vec::with_capacity(size + 512);
    while v.len() < size {
        match rng.pick(10) {
            0..=6 => {
                let b = &blocks[rng.pick(blocks.len() as u32) as usize];
                let n = 64 + rng.pick(449) as usize;
                v.extend_from_slice(&b[..n]);
            }
            7 | 8 => {
                let (n, byte) = (1 + rng.pick(200) as usize, rng.pick(256) as u8);
                v.extend(std::iter::repeat_n(byte, n));
            }
            _ => {
                for _ in 0..1 + rng.pick(300) {
                    v.push(rng.next() as u8);
                }
            }
        }
    }
    v.truncate(size);
    v
}

/// Random bytes, 1 to 16 KiB.
pub fn random(rng: &mut Rng) -> Vec<u8> {
    let size = 1024 + rng.pick(15 * 1024);
    (0..size).map(|_| rng.next() as u8).collect()
}

/// The case: 70 KiB repeating a 251-byte pattern.
pub fn pattern() -> Vec<u8> {
    (0..70 * 1024u32).map(|i| ((i % 251) * 37 + 11) as u8).collect()
}

/// The corpus's groups, each sent over its own connection: (name, messages).
pub fn groups() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let mut rng = Rng::new(0x5EED_0017);
    let blocks: Vec<Vec<u8>> = (0..16).map(|_| (0..512).map(|_| rng.next() as u8).collect()).collect();
    let chat_msgs = (0..400).map(|i| chat(&mut rng, i)).collect();
    let attachments = (0..30).map(|_| attachment(&mut rng, &blocks)).collect();
    let randoms = (0..20).map(|_| random(&mut rng)).collect();
    let patterns = (0..20).map(|_| pattern()).collect();
    let mix = (0..300)
        .map(|i| match rng.pick(10) {
            0..=6 => chat(&mut rng, i),
            7 | 8 => attachment(&mut rng, &blocks),
            _ => random(&mut rng),
        })
        .collect();
    vec![("chat", chat_msgs), ("attachments", attachments), ("random", randoms), ("pattern", patterns), ("mix", mix)]
}
