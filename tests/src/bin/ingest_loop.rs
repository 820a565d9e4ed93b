//! A device that ingests photos as fast as it can, printing each photo's hash once
//! `ingest_photo` has returned. The crash test kills it with SIGKILL mid-way.
//!
//! Usage: ingest_loop DB_PATH USER_ID DEVICE_ID

use gridsync_core::{Engine, Identity};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, db, user, device] = &args[..] else {
        return Err("usage: ingest_loop DB_PATH USER_ID DEVICE_ID".into());
    };
    let engine = Engine::open(
        db,
        Identity {
            user: user.parse()?,
            device: device.parse()?,
        },
    )?;
    for i in 0u32.. {
        let img = image::ImageBuffer::from_fn(1200, 900, |x, y| {
            image::Rgb([(x ^ i) as u8, (y + i) as u8, (i % 251) as u8])
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90).encode_image(&img)?;
        let info = engine.ingest_photo(&jpeg, None)?;
        println!("{} {}", info.hash, info.thumb);
    }
    Ok(())
}
