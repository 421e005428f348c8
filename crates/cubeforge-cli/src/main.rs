//! The `cubeforge` command-line tool: argument parsing, progress and output only; all work is
//! done by the `cubeforge` library.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};
use cubeforge::example::{write_example, ExampleOptions};
use cubeforge::info::human_bytes;
use cubeforge::store::{Location, Store, StoreOptions};
use cubeforge::transfer::{Progress, TransferOptions};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

// Decoding allocates and frees a buffer per chunk; mimalloc keeps freed pages instead of
// returning them to the kernel, which glibc's allocator does at a large cost in page faults.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc.h (the Rust binding names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keep the memory freed chunk buffers held for reuse instead of returning it to the kernel after
/// mimalloc's default delay of a second: each chunk-sized buffer mapped afresh costs the kernel
/// page faults and zeroing, a quarter of a build's CPU time. Memory use stays bounded by the
/// largest amount the build held at once, which `--memory-limit` bounds.
fn keep_freed_memory() {
    // SAFETY: `mi_option_set` only stores an option value; it is called before any thread is
    // started, with an option index and a value mimalloc documents (-1: never purge).
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
    }
}

/// cubeforge: analysis-ready, ML-ready Zarr data cubes from gridded Earth-observation data.
#[derive(Debug, Parser)]
#[command(name = "cubeforge", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args, Clone, Copy)]
struct GlobalArgs {
    /// Print machine-readable JSON on standard output (and errors as JSON on standard error).
    #[arg(long, global = true)]
    json: bool,
    /// No progress bars and no messages; errors are still printed.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// More logging on standard error (-v info, -vv debug, -vvv trace).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Object stores: send unsigned requests (public buckets); no credentials are looked up.
    #[arg(long, global = true)]
    anon: bool,
    /// Object stores: retries of a request that failed with a transient error (5xx, 429,
    /// timeouts, dropped connections), with exponential backoff.
    #[arg(long, global = true, default_value_t = 10)]
    retries: usize,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Summarise a Zarr store (v2 or v3) like xarray's repr: dimensions, coordinates, variables,
    /// chunks, codecs, sizes and attributes.
    Info(InfoArgs),
    /// Build a cube from a recipe (YAML): read, transform and write chunk by chunk.
    Build(BuildArgs),
    /// Copy NetCDF, HDF5 or GeoTIFF files (or a Zarr store) into a Zarr cube without a recipe:
    /// the build of the recipe these flags stand for.
    Convert(ConvertArgs),
    /// Print the grid a recipe's `grid:` block resolves to: CRS, shape, resolution, affine,
    /// bbox, first and last pixel centres.
    Grid(GridArgs),
    /// Write example data.
    #[command(subcommand)]
    Example(ExampleCommand),
    /// List objects, prefixes and Zarr stores (a Zarr store is one entry with its variables).
    Ls(LsArgs),
    /// Bytes and objects below a location; per variable for a Zarr store.
    Du(DuArgs),
    /// Copy an object or a whole store (local, bucket, bucket to bucket).
    Cp(CopyArgs),
    /// Copy only missing or changed objects (size and modification time, or --checksum);
    /// rerun to resume after an interruption.
    Sync(SyncArgs),
    /// Remove an object, or with -r everything below a prefix (a whole store).
    Rm(RmArgs),
}

#[derive(Debug, Args)]
struct LsArgs {
    /// Path or URL (file://, s3://, gs://, az://, http(s)://).
    url: String,
    /// Sizes and times; total size and object count of Zarr stores.
    #[arg(short, long)]
    long: bool,
    /// Every object below, recursively.
    #[arg(short, long)]
    recursive: bool,
}

#[derive(Debug, Args)]
struct GridArgs {
    /// The recipe (YAML) whose `grid:` block to resolve.
    recipe: String,
}

#[derive(Debug, Args)]
struct DuArgs {
    /// Path or URL.
    url: String,
}

#[derive(Debug, Args)]
struct TransferArgs {
    /// Source path or URL: an object, or a prefix (such as a Zarr store) copied whole.
    src: String,
    /// Destination path or URL. A single object goes into it when it ends with '/' or is an
    /// existing directory; a prefix's objects go below it.
    dst: String,
    /// Show what would be copied; copy nothing.
    #[arg(long)]
    dry_run: bool,
    /// Replace the destination's lock even when the cubeforge holding it may still run.
    #[arg(long)]
    break_lock: bool,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    concurrency: u16,
}

#[derive(Debug, Args)]
struct CopyArgs {
    #[command(flatten)]
    common: TransferArgs,
}

#[derive(Debug, Args)]
struct SyncArgs {
    #[command(flatten)]
    common: TransferArgs,
    /// Compare contents (MD5, from S3 ETags where they are one) instead of modification times.
    #[arg(long)]
    checksum: bool,
    /// Also remove destination objects that the source does not have.
    #[arg(long)]
    delete: bool,
}

#[derive(Debug, Args)]
struct RmArgs {
    /// Path or URL of an object, or with -r of a prefix.
    url: String,
    /// Remove everything below the prefix.
    #[arg(short, long)]
    recursive: bool,
    /// Do not ask for confirmation (needed when standard input is not a terminal).
    #[arg(short, long)]
    yes: bool,
    /// Allow removing a whole bucket, container or file-system root with -r.
    #[arg(long)]
    force_root: bool,
    /// Show what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    concurrency: u16,
}

#[derive(Debug, Args)]
struct BuildArgs {
    /// The recipe file.
    recipe: String,
    /// Replace the recipe's input URL (recipes with one input).
    #[arg(long)]
    input: Option<String>,
    /// Replace the recipe's output URL.
    #[arg(long)]
    output: Option<String>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Args)]
struct ConvertArgs {
    /// Sources, then the destination: files, globs (quoted) or a Zarr store; several sources
    /// are joined along --concat.
    #[arg(required = true, num_args = 2..)]
    paths: Vec<String>,
    /// Join the sources along this dimension, ordered by its coordinate.
    #[arg(long)]
    concat: Option<String>,
    /// Where a file's position along --concat comes from when it has no coordinate:
    /// pattern:FORMAT (strftime codes on the file name), attribute:NAME, metadata:ITEM (GDAL
    /// metadata) or tag:NAME (TIFF tag).
    #[arg(long)]
    time_from: Option<String>,
    /// Variables to keep (comma-separated); coordinates stay.
    #[arg(long, value_delimiter = ',')]
    variables: Vec<String>,
    /// Chunk lengths, e.g. time=100,lat=64,lon=64; other dimensions keep the input's chunking.
    #[arg(long)]
    chunks: Option<String>,
    /// Zarr format of the cube.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(2..=3))]
    zarr_format: u8,
    /// Names of a raster's bands (comma-separated): one variable per band.
    #[arg(long, value_delimiter = ',')]
    bands: Vec<String>,
    /// Group of a NetCDF-4/HDF5 file or a Zarr store to read (default: the root).
    #[arg(long, default_value = "")]
    group: String,
    #[command(flatten)]
    run: RunArgs,
}

/// How a build runs, shared by `build` and `convert`.
#[derive(Debug, Args)]
struct RunArgs {
    /// Validate and print the plan; read no data, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Remove an existing destination first.
    #[arg(long)]
    overwrite: bool,
    /// Continue an interrupted run: keep the chunks already written and verified.
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// Replace the destination's lock even when the cubeforge holding it may still run (on
    /// another host, say); without it a lock left by a process that is gone is replaced anyway.
    #[arg(long)]
    break_lock: bool,
    /// Worker threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Bytes of decoded input chunks to keep in memory (default 192 MiB; the cache's buffer pool
    /// may hold one more input chunk); accepts K, M, G suffixes.
    #[arg(long, default_value = "192M")]
    memory_limit: String,
}

#[derive(Debug, Args)]
struct InfoArgs {
    /// Path or URL of a Zarr store, a NetCDF/HDF5/GeoTIFF file, or a glob of files (quoted)
    /// with --concat (file://, memory://, s3://, gs://, az://, http(s)://).
    store: String,
    /// Group within the store or NetCDF-4 file to describe (default: the root group).
    #[arg(long, default_value = "")]
    group: String,
    /// Describe several files (a glob) joined along this dimension.
    #[arg(long)]
    concat: Option<String>,
    /// Also decode every chunk of every variable, to find truncated or corrupt chunks.
    #[arg(long)]
    verify: bool,
}

#[derive(Debug, Subcommand)]
enum ExampleCommand {
    /// A synthetic store shaped like the input of the NOAA CNN tutorial (seed 000): Indian Ocean
    /// chlorophyll, SST, salinity and bathymetry on a 177 x 241 daily grid, Zarr v2, consolidated.
    Io(ExampleIoArgs),
}

#[derive(Debug, Args)]
struct ExampleIoArgs {
    /// Destination store path or URL.
    out: String,
    /// Number of days from 1979-01-01.
    #[arg(long, default_value_t = 3000)]
    days: u64,
    /// Seed of the pseudo-random parts; the same seed writes the same bytes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Replace the destination if it exists.
    #[arg(long)]
    overwrite: bool,
}

fn main() -> ExitCode {
    // Chunk-sized buffers are allocated and freed all the time. With mimalloc returning freed
    // memory to the kernel, transparent huge pages made the kernel zero 2 MiB for every fresh
    // mapping touched, which cost more system time than all the file I/O of a build; with freed
    // memory kept (below) they save no time and raise peak RSS. Not fatal if refused.
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_thp_disable(true);
    keep_freed_memory();
    let cli = Cli::parse();
    init_logging(cli.global);
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (`cubeforge info x | head`) is not an error.
            if err
                .chain()
                .filter_map(|e| e.downcast_ref::<std::io::Error>())
                .any(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            let message = one_line(&err);
            if cli.global.json {
                eprintln!("{}", json!({ "error": message }));
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::from(2)
        }
    }
}

/// An error and its causes on one line, `outer: inner: …`, leaving out a cause whose text the
/// line already holds (the library's errors print their source themselves).
fn one_line(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for text in err.chain().map(ToString::to_string) {
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

fn init_logging(global: GlobalArgs) {
    let level = match global.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CUBEFORGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .without_time()
        .try_init();
}

fn store_options(global: GlobalArgs) -> StoreOptions {
    StoreOptions {
        anon: global.anon,
        max_retries: global.retries,
        ..StoreOptions::default()
    }
}

fn run(cli: &Cli) -> Result<()> {
    cubeforge::store::set_default_options(store_options(cli.global));
    match &cli.command {
        Command::Info(args) => info(cli.global, args),
        Command::Build(args) => build(cli.global, args),
        Command::Convert(args) => convert(cli.global, args),
        Command::Example(ExampleCommand::Io(args)) => example_io(cli.global, args),
        Command::Ls(args) => ls(cli.global, args),
        Command::Du(args) => du(cli.global, args),
        Command::Grid(args) => grid(cli.global, args),
        Command::Cp(args) => transfer(cli.global, &args.common, false, false, false),
        Command::Sync(args) => transfer(cli.global, &args.common, true, args.checksum, args.delete),
        Command::Rm(args) => rm(cli.global, args),
    }
}

fn print_stdout(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn print_info(global: GlobalArgs, described: &cubeforge::info::open::Described) -> Result<()> {
    if global.json {
        print_stdout(&(serde_json::to_string_pretty(&described.to_json()?)? + "\n"))
    } else {
        print_stdout(&cubeforge::info::render_text(&described.report))?;
        if let Some(v) = &described.verified {
            print_stdout(&format!(
                "Verified: {} chunks decoded, {} absent (read as fill value)\n",
                v.chunks_decoded, v.chunks_absent
            ))?;
        }
        Ok(())
    }
}

/// Fail after the report when some variables cannot be read, naming the first.
fn unreadable_error(problems: &[String]) -> Result<()> {
    match problems {
        [] => Ok(()),
        [one] => anyhow::bail!("{one}"),
        [first, rest @ ..] => {
            anyhow::bail!("{first} (and {} more unreadable variables)", rest.len())
        }
    }
}

fn info(global: GlobalArgs, args: &InfoArgs) -> Result<()> {
    let described = cubeforge::info::open::describe(
        &args.store,
        &args.group,
        args.concat.as_deref(),
        args.verify,
    )?;
    print_info(global, &described)?;
    // Variables of types a cube cannot hold (strings, compound types) are described with the
    // reason, and named here.
    for (name, why) in &described.unreadable {
        tracing::warn!(
            "{}: variable '{name}' cannot be read: {why}",
            described.report.location
        );
    }
    // The report is printed either way; unreadable Zarr variables still make the command fail.
    unreadable_error(&described.problems)
}

fn progress_bar(global: GlobalArgs, message: &str) -> ProgressBar {
    if global.quiet || global.json {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} chunks, {per_sec}, ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

fn example_io(global: GlobalArgs, args: &ExampleIoArgs) -> Result<()> {
    let location = Location::parse(&args.out)?;
    if args.overwrite {
        remove_location(&location)?;
    }
    let store = Store::open(&location)?;
    let started = Instant::now();
    let bar = progress_bar(global, "writing example");
    let opts = ExampleOptions {
        days: args.days,
        seed: args.seed,
    };
    let result = write_example(&store, opts, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    if let Err(e) = result {
        // Leave nothing a reader could mistake for a finished store.
        if !matches!(e, cubeforge::Error::DestinationNotEmpty { .. }) {
            let _ = remove_location(&location);
        }
        return Err(e.into());
    }
    let seconds = started.elapsed().as_secs_f64();
    if global.json {
        print_stdout(&format!(
            "{}\n",
            json!({"output": location.to_string(), "days": args.days, "seed": args.seed, "seconds": seconds})
        ))?;
    } else if !global.quiet {
        print_stdout(&format!(
            "wrote {} ({} days, seed {}) in {seconds:.1} s\n",
            location, args.days, args.seed
        ))?;
    }
    Ok(())
}

fn parse_bytes(text: &str) -> Result<usize> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let unit = t[i..].to_ascii_uppercase();
            let m: usize = match unit.trim_end_matches("IB").trim_end_matches('B') {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                _ => anyhow::bail!("--memory-limit: unknown unit in '{text}' (use K, M or G)"),
            };
            (&t[..i], m)
        }
        None => (t, 1),
    };
    let n: usize = num
        .trim()
        .parse()
        .with_context(|| format!("--memory-limit: '{text}' is not a size"))?;
    Ok(n * mult)
}

fn build(global: GlobalArgs, args: &BuildArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.recipe)
        .with_context(|| format!("{}: cannot read the recipe", args.recipe))?;
    let doc = cubeforge::recipe::RecipeDoc::parse(&args.recipe, &text)?;
    run_build(
        global,
        &doc,
        &args.run,
        args.input.clone(),
        args.output.clone(),
        false,
    )
}

fn convert(global: GlobalArgs, args: &ConvertArgs) -> Result<()> {
    let (dest, sources) = args
        .paths
        .split_last()
        .context("convert: give the sources, then the destination")?;
    let spec = cubeforge::convert::ConvertSpec {
        sources: sources.to_vec(),
        dest: dest.clone(),
        concat: args.concat.clone(),
        time_from: args.time_from.clone(),
        variables: args.variables.clone(),
        chunks: match &args.chunks {
            Some(c) => cubeforge::convert::parse_chunks(c)?,
            None => Default::default(),
        },
        zarr_format: args.zarr_format,
        bands: args.bands.clone(),
        group: args.group.clone(),
    };
    let text = cubeforge::convert::recipe_text(&spec)?;
    let doc = cubeforge::recipe::RecipeDoc::parse("cubeforge convert", &text)?;
    run_build(global, &doc, &args.run, None, None, true)
}

fn run_build(
    global: GlobalArgs,
    doc: &cubeforge::recipe::RecipeDoc,
    args: &RunArgs,
    input: Option<String>,
    output: Option<String>,
    skip_unreadable: bool,
) -> Result<()> {
    if let Some(j) = args.jobs {
        rayon::ThreadPoolBuilder::new()
            .num_threads(j.max(1))
            .build_global()
            .context("cannot start the worker pool")?;
    }
    let opts = cubeforge::build::BuildOptions {
        input,
        output,
        dry_run: args.dry_run,
        overwrite: args.overwrite,
        resume: args.resume,
        memory_limit: parse_bytes(&args.memory_limit)?,
        break_lock: args.break_lock,
        skip_unreadable,
        cancel: None,
    };
    let started = Instant::now();
    let bar = progress_bar(global, "building");
    let summary_report = cubeforge::build::build(doc, &opts, &|pass, done, total| {
        bar.set_message(pass.to_string());
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let (summary, report) = (summary_report)?;
    let seconds = started.elapsed().as_secs_f64();
    if global.json {
        let doc = json!({"plan": summary, "report": report, "seconds": seconds});
        return print_stdout(&format!("{}\n", serde_json::to_string_pretty(&doc)?));
    }
    if global.quiet {
        return Ok(());
    }
    let mut text = String::new();
    if args.dry_run {
        text.push_str(&format!(
            "plan for {} (Zarr v{})\n",
            summary.output, summary.zarr_format
        ));
        let dims: Vec<String> = summary
            .dims
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        text.push_str(&format!("dimensions: ({})\n", dims.join(", ")));
        for v in &summary.variables {
            text.push_str(&format!(
                "  {}{} ({}) {} shape {:?} chunks {:?}\n",
                if v.coordinate { "* " } else { "  " },
                v.name,
                v.dims.join(", "),
                v.dtype,
                v.shape,
                v.chunks
            ));
        }
        text.push_str(&format!(
            "reads at most {}, writes {} uncompressed, {} pass(es), estimated peak memory {}\n",
            cubeforge::info::human_bytes(summary.bytes_to_read),
            cubeforge::info::human_bytes(summary.bytes_to_write),
            summary.passes,
            cubeforge::info::human_bytes(summary.estimated_peak_memory)
        ));
    } else if let Some(r) = &report {
        text.push_str(&format!(
            "wrote {} in {seconds:.1} s ({} chunks computed, {} kept from an earlier run)\n",
            summary.output, r.chunks_computed, r.chunks_resumed
        ));
        text.push_str(&format!(
            "open it with: xarray.open_zarr(\"{}\")\n",
            summary.output
        ));
    }
    print_stdout(&text)
}

fn remove_location(location: &Location) -> Result<()> {
    match location {
        Location::Local(path) => {
            if path.exists() {
                std::fs::remove_dir_all(path)
                    .with_context(|| format!("cannot remove {}", path.display()))?;
            }
            Ok(())
        }
        other => {
            let store = Store::open(other)?;
            zarrs_erase_all(&store)
        }
    }
}

fn zarrs_erase_all(store: &Store) -> Result<()> {
    use cubeforge::zarr::erase_prefix;
    erase_prefix(store, "")?;
    Ok(())
}

fn transfer_bar(global: GlobalArgs, verb: &'static str) -> (ProgressBar, impl Fn(Progress) + Sync) {
    let bar = if global.quiet || global.json {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:25}] {bytes}/{total_bytes}, {binary_bytes_per_sec}, ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    };
    let b = bar.clone();
    let update = move |p: Progress| {
        b.set_length(p.bytes_total);
        b.set_position(p.bytes_done);
        b.set_message(format!(
            "{verb} {}/{} objects",
            p.objects_done, p.objects_total
        ));
    };
    (bar, update)
}

fn rate(bytes: u64, seconds: f64) -> String {
    if seconds <= 0.0 {
        return String::new();
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let per_second = (bytes as f64 / seconds) as u64;
    format!(", {}/s", human_bytes(per_second))
}

fn transfer(
    global: GlobalArgs,
    args: &TransferArgs,
    sync: bool,
    checksum: bool,
    delete: bool,
) -> Result<()> {
    let options = TransferOptions {
        concurrency: usize::from(args.concurrency),
        dry_run: args.dry_run,
        checksum,
        delete,
        break_lock: args.break_lock,
        ..TransferOptions::default()
    };
    let started = Instant::now();
    let (bar, update) = transfer_bar(global, "copying");
    let store_options = store_options(global);
    let result = if sync {
        cubeforge::transfer::sync(&args.src, &args.dst, &store_options, &options, &update)
    } else {
        cubeforge::transfer::copy(&args.src, &args.dst, &store_options, &options, &update)
    };
    bar.finish_and_clear();
    let report = result?;
    let seconds = started.elapsed().as_secs_f64();
    if global.json {
        let mut doc = serde_json::to_value(&report)?;
        if let Some(o) = doc.as_object_mut() {
            o.insert("seconds".into(), json!(seconds));
        }
        return print_stdout(&format!("{}\n", serde_json::to_string_pretty(&doc)?));
    }
    if global.quiet {
        return Ok(());
    }
    let mut text = if report.dry_run {
        format!(
            "would copy {} of {} objects ({}) from {} to {}",
            report.copied,
            report.objects,
            human_bytes(report.copied_bytes),
            report.source,
            report.destination
        )
    } else {
        format!(
            "copied {} of {} objects ({}) from {} to {} in {seconds:.1} s{}",
            report.copied,
            report.objects,
            human_bytes(report.copied_bytes),
            report.source,
            report.destination,
            rate(report.copied_bytes, seconds)
        )
    };
    if sync {
        text.push_str(&format!("; {} already up to date", report.skipped));
        if delete {
            let verb = if report.dry_run {
                "would remove"
            } else {
                "removed"
            };
            text.push_str(&format!("; {verb} {} extra", report.deleted));
        }
    }
    text.push('\n');
    if report.dry_run {
        for k in &report.copied_keys {
            text.push_str(&format!("  {k}\n"));
        }
    }
    print_stdout(&text)
}

fn rm(global: GlobalArgs, args: &RmArgs) -> Result<()> {
    use std::io::IsTerminal as _;
    let store_options = store_options(global);
    let plan = cubeforge::transfer::plan_remove(
        &args.url,
        args.recursive,
        args.force_root,
        &store_options,
    )?;
    let what = format!(
        "{} object{} ({})",
        plan.objects,
        if plan.objects == 1 { "" } else { "s" },
        human_bytes(plan.bytes),
    );
    if args.recursive && !args.dry_run && !args.yes {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "{}: refusing to remove {what} without confirmation; pass --yes",
                plan.location()
            );
        }
        eprint!("remove {what} at {}? [y/N] ", plan.location());
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES") {
            anyhow::bail!("{}: not confirmed; nothing removed", plan.location());
        }
    }
    let options = TransferOptions {
        concurrency: usize::from(args.concurrency),
        dry_run: args.dry_run,
        ..TransferOptions::default()
    };
    let (bar, update) = transfer_bar(global, "removing");
    let result = cubeforge::transfer::remove(plan, &options, &update);
    bar.finish_and_clear();
    let report = result?;
    if global.json {
        return print_stdout(&format!("{}\n", serde_json::to_string_pretty(&report)?));
    }
    if !global.quiet {
        let verb = if report.dry_run {
            "would remove"
        } else {
            "removed"
        };
        print_stdout(&format!(
            "{verb} {} objects ({}) at {}\n",
            report.deleted,
            human_bytes(report.bytes),
            report.location
        ))?;
    }
    Ok(())
}

fn ls(global: GlobalArgs, args: &LsArgs) -> Result<()> {
    let entries =
        cubeforge::transfer::list(&args.url, args.long, args.recursive, &store_options(global))?;
    if global.json {
        let doc = json!({"location": args.url, "entries": entries});
        return print_stdout(&format!("{}\n", serde_json::to_string_pretty(&doc)?));
    }
    let mut text = String::new();
    for e in &entries {
        let zarr = match e.zarr_format {
            Some(f) => format!("  [zarr v{f}: {}]", e.variables.join(", ")),
            None => String::new(),
        };
        if args.long {
            let size = e.size.map(human_bytes).unwrap_or_default();
            let detail = match (&e.last_modified, e.objects) {
                (Some(t), _) => t.clone(),
                (None, Some(n)) => format!("{n} objects"),
                (None, None) => String::new(),
            };
            text.push_str(&format!("{size:>10}  {detail:<25}  {}{zarr}\n", e.name));
        } else {
            text.push_str(&format!("{}{zarr}\n", e.name));
        }
    }
    print_stdout(&text)
}

fn grid(global: GlobalArgs, args: &GridArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.recipe)
        .with_context(|| format!("{}: cannot read the recipe", args.recipe))?;
    let doc = cubeforge::recipe::RecipeDoc::parse(&args.recipe, &text)?;
    let gb = cubeforge::grid::resolve(&doc)?;
    if global.json {
        return print_stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&cubeforge::grid::describe(&gb))?
        ));
    }
    print_stdout(&gb.describe_text())
}

fn du(global: GlobalArgs, args: &DuArgs) -> Result<()> {
    let spinner = if global.quiet || global.json {
        ProgressBar::hidden()
    } else {
        let s = ProgressBar::new_spinner();
        s.set_style(
            ProgressStyle::with_template("{spinner} listing: {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        s
    };
    let sp = spinner.clone();
    let result = cubeforge::transfer::usage(&args.url, &store_options(global), &|n, bytes| {
        sp.set_message(format!("{n} objects, {}", human_bytes(bytes)));
        sp.tick();
    });
    spinner.finish_and_clear();
    let usage = result?;
    if global.json {
        return print_stdout(&format!("{}\n", serde_json::to_string_pretty(&usage)?));
    }
    let mut text = format!(
        "{:>10}  {:>8} objects  {}{}\n",
        human_bytes(usage.bytes),
        usage.objects,
        usage.location,
        usage
            .zarr_format
            .map(|f| format!("  [zarr v{f}]"))
            .unwrap_or_default()
    );
    if usage.parts.len() > 1 || usage.zarr_format.is_some() {
        for (name, p) in &usage.parts {
            text.push_str(&format!(
                "{:>10}  {:>8} objects    {name}\n",
                human_bytes(p.bytes),
                p.objects
            ));
        }
    }
    print_stdout(&text)
}
