//! How long `s3-trigger` takes to route and coalesce a batch: `cargo bench -p ferry --bench coalesce`.
//!
//! 1,000 / 10,000 / 100,000 records in three key distributions: one folder, every object in
//! its own folder, and a deep tree. The target (DESIGN.md) is 10,000 records in under 10 ms.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ferry::domain::job::Limits;
use ferry::trigger::coalesce;
use ferry::trigger::events::S3Object;
use ferry::trigger::routes::Routes;

fn routes() -> Routes {
    let text = r#"[{"name": "incoming", "bucket": "ferry-data", "prefix": "incoming/",
        "job": {"name": "incoming-import", "kind": "fsx_import", "file_system_id": "fs-0123456789abcdef0"}}]"#;
    Routes::from_json(text, &Limits::default()).expect("routes")
}

fn objects(n: usize, distribution: &str) -> Vec<(usize, S3Object)> {
    (0..n)
        .map(|i| {
            let key = match distribution {
                "one-folder" => format!("incoming/batch/part-{i:06}.parquet"),
                "many-folders" => format!("incoming/d{i:06}/data.h5"),
                _ => format!(
                    "incoming/{}/{}/{}/{}/f{i:06}.nc",
                    i % 5,
                    i % 7,
                    i % 11,
                    i % 13
                ),
            };
            let object = S3Object {
                bucket: "ferry-data".into(),
                key,
                size: Some(1),
                version_id: None,
                sequencer: Some(format!("{i:016X}")),
                etag: Some("d41d8cd98f00b204e9800998ecf8427e".into()),
            };
            (i / 10, object)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let routes = routes();
    let limits = Limits::default();
    let mut group = c.benchmark_group("coalesce");
    for n in [1_000, 10_000, 100_000] {
        group.throughput(Throughput::Elements(n as u64));
        if n == 100_000 {
            group.sample_size(10);
        }
        for distribution in ["one-folder", "many-folders", "deep-tree"] {
            let input = objects(n, distribution);
            group.bench_with_input(BenchmarkId::new(distribution, n), &input, |b, input| {
                b.iter(|| {
                    let objects = input.iter().map(|(message, object)| (*message, object));
                    coalesce::plan(black_box(&routes), &limits, objects)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
