//! A phone for the vault crash tests (`core/tests/it/vault.rs`), which kill it with
//! SIGKILL at chosen moments. Each line is printed only once the step it names has
//! returned.
//!
//! Usage:
//! - `rekey_loop rekey DB USER DEVICE N KEY0 KEY1`: open with key N (0 or 1),
//!   print `ready`, then forever report a case (`ack <case id>`) and move the
//!   database to the other key (`rekeying <n>` before, `rekeyed <n>` 60 ms after
//!   the rekey returned, the time an app takes to store the new key).
//! - `rekey_loop convert DB USER DEVICE KEY`: open with KEY (converting a
//!   plaintext database), print `opened`.
//!
//! Keys are 64 hex digits.

use gridsync_core::vault::DeviceKey;
use gridsync_core::{Engine, Identity, NewCase, Severity};

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

fn key(hex: &str) -> Result<DeviceKey> {
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()?;
    DeviceKey::from_slice(&bytes).ok_or_else(|| "a key is 64 hex digits".into())
}

fn case(i: u64) -> Result<NewCase> {
    Ok(NewCase {
        title: format!("张三家漏水 13812345678 #{i}"),
        description: "楼上管道漏水，已经渗到楼下天花板。".into(),
        category: "livelihood".parse()?,
        subcategory: None,
        severity: Severity::Normal,
        grid: None,
        location: None,
        people: vec![],
        photos: vec![],
        links: Default::default(),
    })
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: rekey_loop rekey DB USER DEVICE N KEY0 KEY1 | convert DB USER DEVICE KEY";
    let (mode, db, user, device, keys) = match &args[..] {
        [_, mode, db, user, device, keys @ ..] if !keys.is_empty() => {
            (mode, db, user, device, keys)
        }
        _ => return Err(usage.into()),
    };
    let identity = Identity {
        user: user.parse()?,
        device: device.parse()?,
    };
    match (mode.as_str(), keys) {
        ("convert", [k]) => {
            drop(Engine::open_encrypted(db, identity, &key(k)?)?);
            println!("opened");
        }
        ("rekey", [start, k0, k1]) => {
            let keys = [key(k0)?, key(k1)?];
            let mut current: usize = start.parse()?;
            let engine = Engine::open_encrypted(db, identity, keys.get(current).ok_or(usage)?)?;
            println!("ready");
            for i in 0u64.. {
                let id = engine.report_case(case(i)?)?;
                println!("ack {id}");
                let next = 1 - current;
                println!("rekeying {next}");
                engine.rekey(&keys[next])?;
                // Where an app stores the new key in its keystore: a kill here
                // leaves the database on the new key while the app still holds
                // the old one as current. Long enough for the tests' kills to
                // land here too, not only inside the rekey.
                std::thread::sleep(std::time::Duration::from_millis(60));
                println!("rekeyed {next}");
                current = next;
            }
        }
        _ => return Err(usage.into()),
    }
    Ok(())
}
