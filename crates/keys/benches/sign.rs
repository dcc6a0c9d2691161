//! Raw in-process signing speed per algorithm (the software backend, one thread), the baseline
//! for `signet bench`'s end-to-end figures. Run: `cargo bench -p signet-keys`.

use criterion::{Criterion, criterion_group, criterion_main};
use signet_core::backend::KeyBackend;
use signet_core::backend::{KeySpec, SigningKey};
use signet_core::{Algorithm, Digest};
use signet_keys::{Kek, SoftwareBackend};

fn open(backend: &SoftwareBackend, alg: Algorithm) -> Option<Box<dyn SigningKey>> {
    let spec = KeySpec {
        key_id: format!("bench-{alg}"),
        version: 1,
        algorithm: alg,
    };
    let generated = backend.generate_blocking(&spec).ok()?;
    backend.open(&spec, &generated.handle).ok()
}

fn bench(c: &mut Criterion) {
    let Some(backend) = Kek::generate_bytes()
        .ok()
        .and_then(|b| Kek::from_bytes(b.as_ref()).ok())
        .map(SoftwareBackend::new)
    else {
        eprintln!("cannot set up the software backend");
        return;
    };
    let mut group = c.benchmark_group("sign_digest");
    for alg in Algorithm::ALL {
        let Some(key) = open(&backend, alg) else {
            eprintln!("cannot create a {alg} key");
            continue;
        };
        let d = alg.default_digest();
        let Ok(digest) = Digest::new(d, vec![0x5a; d.output_len()]) else {
            continue;
        };
        group.bench_function(alg.as_str(), |b| b.iter(|| key.sign_digest(&digest)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
