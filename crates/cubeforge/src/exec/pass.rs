//! Passes: which reductions and outputs are computed in which streaming pass
//! ([`plan_passes`]), and running one pass: its reduction blocks and output tasks in one order on
//! all workers, the cache told in advance what each will read ([`Exec::run_pass`]).

use std::sync::{Arc, Mutex};

use super::cache::{ChunkCache, Needed};
use super::reduce::{Acc, ReductionJob};
use super::Exec;
use crate::error::{Error, Result};
use crate::plan::{Block, Node, NodeRef, Window};

/// Per pass, the pending reductions it computes and the outputs (indices into the list given to
/// [`plan_passes`]) it writes.
pub type Passes = Vec<(Vec<NodeRef>, Vec<usize>)>;

/// The passes of a build: per pass, the pending reductions it computes and the outputs (indices
/// into `outs`: `None` for coordinates, written from their values) it writes. `pending` says
/// which reductions are still to compute (all of them in a dry run).
///
/// A reduction that needs no other pending one runs in pass 0; one that reads the result of a
/// reduction of pass k runs in pass k + 1. An output runs in the pass after the last reduction it
/// needs (pass 0 when it needs none), together with the reductions of that pass, so that they
/// share the input chunks they decode. Coordinates are written in the last pass.
pub fn plan_passes(outs: &[Option<&NodeRef>], pending: &dyn Fn(&Node) -> bool) -> Passes {
    /// Adds the pending reductions under `n` to `found` (with their pass) and returns the last
    /// pass among them.
    fn visit(
        n: &NodeRef,
        pending: &dyn Fn(&Node) -> bool,
        found: &mut Vec<(NodeRef, usize)>,
    ) -> Option<usize> {
        let below = n
            .children()
            .into_iter()
            .filter_map(|c| visit(c, pending, found))
            .max();
        if !pending(n) {
            return below;
        }
        if let Some((_, p)) = found.iter().find(|(r, _)| Arc::ptr_eq(r, n)) {
            return Some(*p);
        }
        let p = below.map_or(0, |b| b + 1);
        found.push((n.clone(), p));
        Some(p)
    }
    let mut found = Vec::new();
    let pass_of: Vec<Option<usize>> = outs
        .iter()
        .map(|o| o.map(|n| visit(n, pending, &mut found).map_or(0, |p| p + 1)))
        .collect();
    let last = pass_of.iter().flatten().copied().max().unwrap_or(0);
    let mut stages: Passes = (0..=last).map(|_| (Vec::new(), Vec::new())).collect();
    for (r, p) in found {
        stages[p].0.push(r);
    }
    for (ai, p) in pass_of.iter().enumerate() {
        stages[p.unwrap_or(last)].1.push(ai);
    }
    stages
}

/// The window of output chunk `idx` for chunks of `chunks` in an array of `shape`.
#[must_use]
pub fn chunk_window(idx: &[u64], chunks: &[u64], shape: &[u64]) -> Window {
    idx.iter()
        .zip(chunks)
        .zip(shape)
        .map(|((i, c), n)| (i * c)..((i + 1) * c).min(*n))
        .collect()
}

impl Exec {
    /// One streaming pass over the input: the blocks of `reductions` (computed here, each
    /// result then kept by the executor) and `tasks`, run together in one order so that the
    /// reductions and the tasks reading the same input chunks run close together and each
    /// chunk is decoded about once.
    ///
    /// Blocks and tasks are ordered by `position` (a task's place along the first dimension of
    /// what it computes, as a fraction of its length; a block's along its reduction's child),
    /// backwards when `backwards` (the chunks a previous forward pass left in the cache are the
    /// last ones). The cache is told what each will read, in that order. Reductions already
    /// computed are skipped; reductions inside another one's input are computed first, each in
    /// a pass of its own (`Exec::materialise_below`: [`plan_passes`] plans them into earlier
    /// passes). The tasks must read only reductions already computed.
    ///
    /// # Errors
    /// The first error of a block or of `run`.
    #[allow(clippy::too_many_arguments)]
    pub fn run_pass<T: Sync>(
        &self,
        reductions: &[NodeRef],
        tasks: &[T],
        position: impl Fn(&T) -> f64,
        needs: impl Fn(&T, &mut Vec<Needed>),
        run: impl Fn(&T) -> Result<()> + Sync,
        backwards: bool,
        progress: impl Fn(u64, u64) + Sync,
    ) -> Result<()> {
        let pending: Vec<&NodeRef> = reductions.iter().filter(|n| self.is_pending(n)).collect();
        for n in &pending {
            self.materialise_below(n)?;
        }
        let jobs: Vec<ReductionJob> = pending
            .iter()
            .map(|n| ReductionJob::new(n))
            .collect::<Result<_>>()?;
        let order = Order {
            position,
            needs,
            backwards,
        };
        let blocks = self.run_jobs(Some(&self.cache), &jobs, tasks, &order, run, progress)?;
        for (job, block) in jobs.iter().zip(blocks) {
            self.set_reduction(job.node, block)?;
        }
        Ok(())
    }

    /// Compute reduction `node` over its child's full extent, in parallel blocks along its
    /// child's first dimension (see [`ReductionJob`]), in a pass of its own.
    pub(super) fn materialise(&self, node: &Node) -> Result<Block> {
        self.materialise_below(node)?;
        let job = ReductionJob::new(node)?;
        // A reduction that reads no source (of generated values) needs no schedule.
        let cache = node.reads_sources().then_some(&self.cache);
        let no_tasks: [(); 0] = [];
        let order = Order {
            position: |_: &()| 0.0,
            needs: |_: &(), _: &mut Vec<Needed>| {},
            backwards: false,
        };
        let mut blocks = self.run_jobs(
            cache,
            std::slice::from_ref(&job),
            &no_tasks,
            &order,
            |_: &()| Ok(()),
            |_, _| {},
        )?;
        blocks
            .pop()
            .ok_or_else(|| Error::Other("internal: a reduction pass without its result".into()))
    }

    /// The blocks of `jobs` and `tasks`, in [`Exec::run_pass`]'s order, under one schedule of
    /// `cache` (none without a cache); returns the result of each job.
    fn run_jobs<T: Sync, P, N>(
        &self,
        cache: Option<&ChunkCache>,
        jobs: &[ReductionJob],
        tasks: &[T],
        order: &Order<P, N>,
        run: impl Fn(&T) -> Result<()> + Sync,
        progress: impl Fn(u64, u64) + Sync,
    ) -> Result<Vec<Block>>
    where
        P: Fn(&T) -> f64,
        N: Fn(&T, &mut Vec<Needed>),
    {
        let items = order.items(jobs, tasks);
        let scheduled = cache.is_some_and(|c| {
            c.set_schedule(
                items
                    .iter()
                    .map(|(_, item)| {
                        let mut keys = Vec::new();
                        match *item {
                            Item::Block(j, b) => jobs[j].needs(self, b, &mut keys),
                            Item::Task(t) => (order.needs)(&tasks[t], &mut keys),
                        }
                        keys
                    })
                    .collect(),
            )
        });
        // Only a scheduled pass reports its tasks to the cache (a nested one keeps the outer's).
        let cache = cache.filter(|_| scheduled);
        let partials: Mutex<Vec<Vec<Acc>>> =
            Mutex::new((0..jobs.len()).map(|_| Vec::new()).collect());
        let total = items.len() as u64;
        let done = std::sync::atomic::AtomicU64::new(0);
        progress(0, total);
        let result = for_each_in_order_with(
            &items,
            || -> Vec<Option<Acc>> { (0..jobs.len()).map(|_| None).collect() },
            |accs, &(i, item)| {
                if let Some(c) = cache {
                    c.started(i);
                }
                let r = match item {
                    Item::Block(j, b) => {
                        let acc = accs[j].get_or_insert_with(|| Acc::new(jobs[j].n_out));
                        jobs[j].run(self, acc, b)
                    }
                    Item::Task(t) => run(&tasks[t]),
                };
                if let Some(c) = cache {
                    c.finished(i);
                }
                r?;
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                progress(n, total);
                Ok(())
            },
            |accs| {
                if let Ok(mut p) = partials.lock() {
                    for (j, acc) in accs.into_iter().enumerate() {
                        if let Some(acc) = acc {
                            p[j].push(acc);
                        }
                    }
                }
            },
        );
        if let Some(c) = cache {
            c.clear_schedule();
        }
        result?;
        let partials = partials
            .into_inner()
            .map_err(|_| Error::Other("reduction state poisoned".into()))?;
        Ok(jobs
            .iter()
            .zip(&partials)
            .map(|(job, accs)| job.finish(accs))
            .collect())
    }
}

/// One item of a pass: block `b` of reduction job `j`, or task `t`.
#[derive(Clone, Copy)]
enum Item {
    Block(usize, usize),
    Task(usize),
}

/// How a pass orders its tasks among the reduction blocks, and what each task reads.
struct Order<P, N> {
    position: P,
    needs: N,
    backwards: bool,
}

impl<P, N> Order<P, N> {
    /// The blocks of `jobs` and `tasks`, numbered in the order they run.
    fn items<T>(&self, jobs: &[ReductionJob], tasks: &[T]) -> Vec<(usize, Item)>
    where
        P: Fn(&T) -> f64,
    {
        let mut items: Vec<(f64, Item)> = Vec::new();
        for (j, job) in jobs.iter().enumerate() {
            items.extend((0..job.blocks()).map(|b| (job.position(b), Item::Block(j, b))));
        }
        items.extend(
            tasks
                .iter()
                .enumerate()
                .map(|(t, task)| ((self.position)(task), Item::Task(t))),
        );
        // Stable: at one position, reduction blocks first, tasks in the order given.
        items.sort_by(|a, b| a.0.total_cmp(&b.0));
        if self.backwards {
            items.reverse();
        }
        items
            .into_iter()
            .enumerate()
            .map(|(i, (_, item))| (i, item))
            .collect()
    }
}

/// Run `f` over `items` on all worker threads, taking items strictly in order from a shared
/// counter (rayon's splitting would send the two halves of the list to different workers, far
/// apart in the data). Each worker has a state made by `init` and handed to `finish` at the end.
/// Stops at the first error and returns it.
///
/// # Errors
/// The first error `f` returns.
pub fn for_each_in_order_with<T: Sync, S>(
    items: &[T],
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, &T) -> Result<()> + Sync,
    finish: impl Fn(S) + Sync,
) -> Result<()> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let workers = rayon::current_num_threads().max(1).min(items.len().max(1));
    rayon::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|_| {
                let mut state = init();
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if let Err(e) = f(&mut state, item) {
                        failed.store(true, Ordering::Relaxed);
                        if let Ok(mut slot) = first_error.lock() {
                            slot.get_or_insert(e);
                        }
                        break;
                    }
                }
                finish(state);
            });
        }
    });
    match first_error.into_inner() {
        Ok(Some(e)) => Err(e),
        Ok(None) => Ok(()),
        Err(_) => Err(Error::Other("worker state poisoned".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::BinOp;
    use crate::plan::{Op, Reduction, UnOp, VType};
    use crate::source::Sources;
    use crate::testkit::{grid_source, reduce, unary_node};

    #[test]
    fn one_pass_computes_reductions_and_tasks_reading_the_same_chunks() {
        // 4 chunks of 512 × 1024 values: the reduction blocks are 512 rows, one chunk each.
        let (nt, nx, ct) = (2048u64, 1024u64, 512u64);
        #[allow(clippy::cast_precision_loss)]
        let value = |t: u64, x: u64| -> f32 {
            if x % 3 == 0 || t == x {
                f32::NAN
            } else {
                (t * 7 + x) as f32
            }
        };
        let chunk_bytes = usize::try_from(ct * nx * 4).expect("size");
        for backwards in [false, true] {
            // Room for three chunks.
            let name = format!("plan-pass-{backwards}");
            let mut sources = Sources::default();
            let x = grid_source(&mut sources, &name, [nt, nx], [ct, nx], value);
            let ex = Exec::new(sources, 3 * chunk_bytes);
            let all_nan = reduce(
                &unary_node(UnOp::IsNan, &x, VType::Bool),
                Reduction::All,
                &["t"],
                VType::Bool,
            );
            let max = reduce(&x, Reduction::Max, &["t"], VType::F32);
            let sums = Mutex::new(vec![0f64; 4]);
            let tasks: Vec<u64> = (0..4).collect();
            ex.run_pass(
                &[all_nan.clone(), max.clone()],
                &tasks,
                |c| *c as f64 / 4.0,
                |c, keys| ex.chunks_needed(&x, &vec![c * ct..(c + 1) * ct, 0..nx], keys),
                |c| {
                    let b = ex.eval(&x, &vec![c * ct..(c + 1) * ct, 0..nx])?;
                    let sum = b.data.to_f64().iter().filter(|v| !v.is_nan()).sum();
                    sums.lock().expect("lock")[usize::try_from(*c).expect("index")] = sum;
                    Ok(())
                },
                backwards,
                |_, _| {},
            )
            .expect("pass");
            // The reductions and the tasks shared every chunk: each was decoded once. (A pass
            // for the reductions and then one for the tasks would decode 4 + 1.)
            assert_eq!(ex.cache().decoded(), 4, "backwards: {backwards}");
            let want: Vec<f64> = (0..4u64)
                .map(|c| {
                    (c * ct..(c + 1) * ct)
                        .flat_map(|t| (0..nx).map(move |x| f64::from(value(t, x))))
                        .filter(|v| !v.is_nan())
                        .sum()
                })
                .collect();
            assert_eq!(*sums.lock().expect("lock"), want);
            // The reductions were computed in the pass (reading them decodes nothing more).
            let whole: Window = std::iter::once(0..nx).collect();
            let got_nan = ex.eval(&all_nan, &whole).expect("eval").data.to_bool();
            let got_max = ex.eval(&max, &whole).expect("eval").data.to_f64();
            assert_eq!(ex.cache().decoded(), 4);
            for xi in 0..nx {
                let col: Vec<f32> = (0..nt).map(|t| value(t, xi)).collect();
                let i = usize::try_from(xi).expect("x");
                assert_eq!(got_nan[i], col.iter().all(|v| v.is_nan()), "x {xi}");
                let m = col
                    .iter()
                    .filter(|v| !v.is_nan())
                    .fold(f32::NAN, |a, b| a.max(*b));
                let g = got_max[i];
                assert!(
                    (g.is_nan() && m.is_nan()) || g == f64::from(m),
                    "x {xi}: {g} vs {m}"
                );
            }
        }
    }

    #[test]
    fn a_pass_computes_a_reduction_over_another_one() {
        #[allow(clippy::cast_precision_loss)]
        let value = |t: u64, x: u64| -> f32 { (t * t + x) as f32 };
        let mut sources = Sources::default();
        let x = grid_source(&mut sources, "plan-nested", [8, 3], [2, 3], value);
        let ex = Exec::new(sources, 1 << 20);
        // max over t of (x - mean over t of x)
        let mean = reduce(&x, Reduction::Mean, &["t"], VType::F32);
        let centred = Node::new(
            Op::Binary(BinOp::Sub, x.clone(), mean.clone()),
            x.dims.clone(),
            x.shape.clone(),
            VType::F32,
        );
        let max = reduce(&centred, Reduction::Max, &["t"], VType::F32);
        let no_tasks: [u8; 0] = [];
        ex.run_pass(
            std::slice::from_ref(&max),
            &no_tasks,
            |_| 0.0,
            |_, _| {},
            |_| Ok(()),
            false,
            |_, _| {},
        )
        .expect("pass");
        assert!(!ex.is_pending(&mean));
        assert!(!ex.is_pending(&max));
        let got = ex
            .eval(&max, &std::iter::once(0..3).collect())
            .expect("eval")
            .data
            .to_f64();
        // mean over t of t*t + x is 17.5 + x; the largest t*t is 49: 49 - 17.5.
        assert_eq!(got, vec![31.5; 3]);
    }

    #[test]
    fn each_output_runs_in_the_pass_after_the_reductions_it_needs() {
        let constant = || {
            Node::new(
                Op::Const(crate::plan::Data::F64(vec![1.0])),
                vec![],
                vec![],
                VType::F64,
            )
        };
        let reduce = |child: NodeRef| {
            Node::new(
                Op::Reduce {
                    child,
                    dims: vec![],
                    kind: Reduction::Max,
                },
                vec![],
                vec![],
                VType::F64,
            )
        };
        let binary = |a: &NodeRef, b: &NodeRef| {
            Node::new(
                Op::Binary(BinOp::Add, a.clone(), b.clone()),
                vec![],
                vec![],
                VType::F64,
            )
        };
        // r1 reads r0's result; out2 needs both, out1 only r0, out0 none.
        let r0 = reduce(constant());
        let r1 = reduce(binary(&r0, &constant()));
        let out0 = constant();
        let out1 = binary(&r0, &constant());
        let out2 = binary(&r1, &r0);
        let ex = Exec::new(Sources::default(), 1 << 20);
        let pending = |n: &Node| ex.is_pending(n);
        let stages = plan_passes(&[Some(&out2), None, Some(&out1), Some(&out0)], &pending);
        assert_eq!(stages.len(), 3);
        let arrays: Vec<&Vec<usize>> = stages.iter().map(|(_, a)| a).collect();
        // Coordinates (None) in the last pass.
        assert_eq!(arrays, [&vec![3], &vec![2], &vec![0, 1]]);
        let reductions: Vec<Vec<*const Node>> = stages
            .iter()
            .map(|(r, _)| r.iter().map(Arc::as_ptr).collect())
            .collect();
        assert_eq!(
            reductions,
            [vec![Arc::as_ptr(&r0)], vec![Arc::as_ptr(&r1)], vec![]]
        );
        // A reduction already computed constrains nothing.
        let w: Window = vec![];
        ex.eval(&r0, &w).expect("eval");
        let stages = plan_passes(&[Some(&out2), Some(&out1), Some(&out0)], &pending);
        assert_eq!(stages.len(), 2);
        assert_eq!(stages[0].1, vec![1, 2]);
        assert_eq!(stages[1].1, vec![0]);
    }
}
