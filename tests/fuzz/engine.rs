//! The fuzzing engine: a seeded RNG, the mutations and the bounded run.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;
use std::time::{Duration, Instant};

/// xorshift64*: small, fast and the same on every platform, so a seed replays.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // splitmix64 of the seed, never zero.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Values that sit on boundaries, written at a random place in either byte order.
const INTERESTING: [u64; 16] = [
    0,
    1,
    0x7F,
    0x80,
    0xFF,
    0x100,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x1_0000,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFF,
    0x1_0000_0000,
    i64::MAX as u64,
    u64::MAX,
];

/// Apply one to four mutations to `input`, drawing on `seeds` for splices and
/// `tokens` for the format's own byte sequences; the result is at most `max_len`.
pub fn mutate(
    rng: &mut Rng,
    input: &[u8],
    seeds: &[Vec<u8>],
    tokens: &[&[u8]],
    max_len: usize,
) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        match rng.below(11) {
            0 if len > 0 => {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(len);
                    out[i] ^= 1 << rng.below(8);
                }
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = rng.next() as u8;
            }
            2 if len > 0 => {
                let i = rng.below(len);
                out[i] = *rng.pick(&[0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF]);
            }
            3 => {
                let value = *rng.pick(&INTERESTING);
                let width = *rng.pick(&[1usize, 2, 4, 8]);
                let bytes = if rng.chance(2) {
                    value.to_be_bytes()[8 - width..].to_vec()
                } else {
                    value.to_le_bytes()[..width].to_vec()
                };
                if len >= width {
                    let i = rng.below(len - width + 1);
                    out[i..i + width].copy_from_slice(&bytes);
                }
            }
            4 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                out.splice(i..i, bytes);
            }
            5 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                out.drain(i..i + n);
            }
            6 if len > 0 => out.truncate(rng.below(len)),
            7 if len > 0 => {
                // Duplicate a range somewhere else (repeated segments, lists).
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(256));
                let chunk = out[i..i + n].to_vec();
                let at = rng.below(len + 1);
                out.splice(at..at, chunk);
            }
            8 if !seeds.is_empty() => {
                // Splice: this input's head, another seed's tail.
                let other = rng.pick(seeds);
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
            9 | 10 if !tokens.is_empty() => {
                let token = rng.pick(tokens);
                let i = rng.below(len + 1);
                if rng.chance(2) || len < token.len() {
                    out.splice(i..i, token.iter().copied());
                } else {
                    let i = i.min(len - token.len());
                    out[i..i + token.len()].copy_from_slice(token);
                }
            }
            _ => {}
        }
    }
    out.truncate(max_len);
    out
}

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// While a target runs an input, a panic is recorded instead of printed; anything
/// else (the test's own assertions) goes to the default hook.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) {
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(info.to_string()));
            } else {
                default(info);
            }
        }));
    });
}

/// A format-aware mutator: (rng, parent input, seeds) to a new input.
pub type Mutator<'a> = &'a dyn Fn(&mut Rng, &[u8], &[Vec<u8>]) -> Vec<u8>;

/// What running one input gave.
pub enum Verdict {
    Accepted,
    Refused,
}

/// One fuzz target: a name, valid seeds, format tokens, and the function under test.
pub struct Target<'a> {
    pub name: &'a str,
    pub seeds: Vec<Vec<u8>>,
    pub tokens: &'a [&'a [u8]],
    /// Longest input tried.
    pub max_len: usize,
    /// Most inputs tried (the time budget usually ends the run first).
    pub max_iterations: u64,
    /// Accepted inputs kept to mutate further (0: only the seeds).
    pub max_corpus: usize,
    /// A format-aware mutator used instead of [`mutate`] (which it may call).
    pub mutator: Option<Mutator<'a>>,
    pub run: &'a dyn Fn(&[u8]) -> Verdict,
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a whole number")),
    )
}

/// `GRIDSYNC_FUZZ_SEED`, or one from the clock.
fn base_seed() -> u64 {
    env_u64("GRIDSYNC_FUZZ_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Run `target` for the budget the environment sets (see the crate's docs); print
/// one JSON line; fail if any input panicked.
pub fn fuzz(target: Target<'_>) {
    let base_seed = base_seed();
    let budget = Duration::from_secs(env_u64("GRIDSYNC_FUZZ_SECONDS").unwrap_or(40));
    let max_iterations = env_u64("GRIDSYNC_FUZZ_ITERATIONS")
        .map_or(target.max_iterations, |cap| cap.min(target.max_iterations));
    let name = target.name.to_owned();
    let report = fuzz_with(target, base_seed, budget, max_iterations);
    assert_eq!(
        report.panics, 0,
        "fuzz {name}: {} inputs panicked (seed {base_seed}); see the inputs above",
        report.panics
    );
    assert!(
        report.seeds_accepted > 0,
        "fuzz {name}: no seed is accepted, so the target tests only refusals"
    );
}

/// What a run found.
pub struct Report {
    pub panics: u64,
    pub seeds_accepted: usize,
    /// Up to five panicking inputs: (input number, panic message, input).
    pub findings: Vec<(u64, String, Vec<u8>)>,
}

/// Run `target` from `base_seed` for at most `budget` and `max_iterations` inputs;
/// print one JSON line and the panicking inputs.
pub fn fuzz_with(
    target: Target<'_>,
    base_seed: u64,
    budget: Duration,
    max_iterations: u64,
) -> Report {
    install_panic_hook();
    // Mixed with the name, so targets run from one seed differ.
    let seed = target.name.bytes().fold(base_seed, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    });
    println!(
        "fuzz {}: seed {base_seed} (GRIDSYNC_FUZZ_SEED={base_seed} replays it), {} s, at most {max_iterations} inputs",
        target.name,
        budget.as_secs()
    );
    let mut rng = Rng::new(seed);
    let mut corpus = target.seeds.clone();
    let (mut accepted, mut refused, mut panics) = (0u64, 0u64, 0u64);
    let mut seeds_accepted = 0;
    let mut findings: Vec<(u64, String, Vec<u8>)> = Vec::new();
    let mut slowest = Duration::ZERO;
    let mut caught = 0u64;
    let mut caught_example: Option<(u64, String, Vec<u8>)> = None;
    let mut iterations = 0u64;
    let start = Instant::now();

    let mut run_one = |input: &[u8], iteration: u64| -> Option<bool> {
        LAST_PANIC.with(|p| p.borrow_mut().take());
        QUIET.with(|q| q.set(true));
        let t = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| (target.run)(input)));
        slowest = slowest.max(t.elapsed());
        QUIET.with(|q| q.set(false));
        if outcome.is_ok() {
            // A panic the code under test caught itself (and turned into an error):
            // handled, but a bug below it worth reporting.
            if let Some(message) = LAST_PANIC.with(|p| p.borrow_mut().take()) {
                caught += 1;
                if caught_example.is_none() {
                    caught_example = Some((iteration, message, input.to_vec()));
                }
            }
        }
        match outcome {
            Ok(Verdict::Accepted) => {
                accepted += 1;
                Some(true)
            }
            Ok(Verdict::Refused) => {
                refused += 1;
                Some(false)
            }
            Err(_) => {
                panics += 1;
                let message = LAST_PANIC
                    .with(|p| p.borrow_mut().take())
                    .unwrap_or_else(|| "(no message)".into());
                if findings.len() < 5 {
                    findings.push((iteration, message, input.to_vec()));
                }
                None
            }
        }
    };

    // The seeds first, unmutated: each must run, and most are accepted.
    for s in &target.seeds {
        if run_one(s, 0) == Some(true) {
            seeds_accepted += 1;
        }
    }
    while iterations < max_iterations && start.elapsed() < budget {
        iterations += 1;
        let parent = &corpus[rng.below(corpus.len())];
        let mut input = match target.mutator {
            Some(mutator) => mutator(&mut rng, parent, &target.seeds),
            None => mutate(
                &mut rng,
                parent,
                &target.seeds,
                target.tokens,
                target.max_len,
            ),
        };
        input.truncate(target.max_len);
        if run_one(&input, iterations) == Some(true)
            && corpus.len() < target.seeds.len() + target.max_corpus
            && !corpus.contains(&input)
        {
            corpus.push(input);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "fuzz": target.name,
            "seed": base_seed,
            "seeds": target.seeds.len(),
            "seeds_accepted": seeds_accepted,
            "iterations": iterations,
            "seconds": (seconds * 10.0).round() / 10.0,
            "accepted": accepted,
            "refused": refused,
            "panics": panics,
            "caught_panics": caught,
            "corpus": corpus.len(),
            "slowest_ms": slowest.as_millis() as u64,
        })
    );
    if let Some((iteration, message, input)) = &caught_example {
        println!(
            "fuzz {}: a panic caught inside the code under test at input {iteration} (seed {base_seed}): {message}\ninput ({} bytes): {}",
            target.name,
            input.len(),
            hex(input)
        );
    }
    for (iteration, message, input) in &findings {
        println!(
            "fuzz {} PANIC at input {iteration} (seed {base_seed}): {message}\ninput ({} bytes): {}",
            target.name,
            input.len(),
            hex(input)
        );
    }
    Report {
        panics,
        seeds_accepted,
        findings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_the_same_mutations() {
        let seeds = vec![b"0123456789abcdef".to_vec()];
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..50)
                .map(|_| mutate(&mut rng, &seeds[0], &seeds, &[b"\xff\xd8"], 64))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        assert!(run(7).iter().all(|m| m.len() <= 64));
    }

    #[test]
    fn a_panicking_target_fails_and_names_the_input() {
        let target = Target {
            name: "self-test",
            seeds: vec![b"ok".to_vec()],
            tokens: &[b"!"],
            max_len: 8,
            max_iterations: 2_000,
            max_corpus: 0,
            mutator: None,
            run: &|input: &[u8]| {
                assert!(!input.contains(&b'!'), "a planted bug");
                Verdict::Accepted
            },
        };
        let report = fuzz_with(target, 1, Duration::from_secs(30), 2_000);
        assert!(report.panics > 0, "the planted bug is found");
        let (_, message, input) = &report.findings[0];
        assert!(message.contains("a planted bug") && input.contains(&b'!'));
    }
}
