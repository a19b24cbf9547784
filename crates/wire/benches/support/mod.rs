//! Timing shared by the benchmarks: medians of jobs that take turns, so that each sees the same
//! machine (the other core may be busy).

use std::time::{Duration, Instant};

fn time(run: &mut dyn FnMut()) -> Duration {
    let start = Instant::now();
    run();
    start.elapsed()
}

/// The median time of each job over `rounds` rounds, the jobs taking turns within a round.
pub fn medians(jobs: &mut [&mut dyn FnMut()], rounds: usize) -> Vec<Duration> {
    let mut times: Vec<Vec<Duration>> = vec![Vec::with_capacity(rounds); jobs.len()];
    for _ in 0..rounds {
        for (job, times) in jobs.iter_mut().zip(&mut times) {
            times.push(time(*job));
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort();
            t[rounds / 2]
        })
        .collect()
}
