use cc::Build;
use std::env;
use std::fs;

/// C-Blosc's AVX2 shuffle code: compiled with `-mavx2` on its own, as C-Blosc's CMake build does,
/// while every other file is compiled for the baseline target. The shuffle dispatcher
/// (`shuffle.c`, built with `SHUFFLE_AVX2_ENABLED`) uses it only when `cpuid` reports AVX2 at run
/// time, so the library still runs on any x86-64 CPU.
const AVX2_FILES: [&str; 2] = ["shuffle-avx2.c", "bitshuffle-avx2.c"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");

    let mut build = cc::Build::new();
    // C-Blosc's own sources: their compiler warnings are upstream's, not this build's.
    build.warnings(false);

    let target_mscv = env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("msvc");
    let target_features = env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let target_features = target_features.split(',').collect::<Vec<_>>();
    let x86 = matches!(
        env::var("CARGO_CFG_TARGET_ARCH").as_deref(),
        Ok("x86_64") | Ok("x86")
    );
    // AVX2 code for run-time dispatch when the target does not already assume AVX2.
    let dispatch_avx2 = x86
        && !target_mscv
        && !target_features.contains(&"avx2")
        && Build::new().is_flag_supported("-mavx2").unwrap_or(false);
    let add_file = |builder: &mut Build, folder: &str| {
        for entry in fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if dispatch_avx2 && AVX2_FILES.contains(&name) {
                continue;
            }
            if let Some(extension) = path.extension() {
                if extension == "c" || extension == "cpp" || (!target_mscv && extension == "S") {
                    builder.file(path);
                }
            }
        }
    };

    add_file(&mut build, "c-blosc/blosc");

    if target_features.contains(&"sse2") {
        build.define("SHUFFLE_SSE2_ENABLED", "1");
        if target_mscv {
            if env::var("CARGO_CFG_TARGET_POINTER_WIDTH").as_deref() == Ok("32") {
                build.flag("/arch:SSE2");
            }
        } else {
            build.flag("-msse2");
        }
    }
    if target_features.contains(&"avx2") {
        build.define("SHUFFLE_AVX2_ENABLED", "1");
        if target_mscv {
            build.flag("/arch:AVX2");
        } else {
            build.flag("-mavx2");
        }
    } else if dispatch_avx2 {
        build.define("SHUFFLE_AVX2_ENABLED", "1");
        let mut avx2 = cc::Build::new();
        avx2.warnings(false).flag("-mavx2");
        if target_features.contains(&"sse2") {
            avx2.define("SHUFFLE_SSE2_ENABLED", "1").flag("-msse2");
        }
        for name in AVX2_FILES {
            avx2.file(format!("c-blosc/blosc/{name}"));
        }
        for object in avx2.compile_intermediates() {
            build.object(object);
        }
    }

    if cfg!(feature = "lz4") {
        let lz4_include_dir = std::env::var_os("DEP_LZ4_INCLUDE").unwrap();
        build.include(&lz4_include_dir);
        build.define("HAVE_LZ4", None);
    }
    if cfg!(feature = "zlib") {
        let zlib_include_dir = std::env::var_os("DEP_Z_INCLUDE").unwrap();
        build.include(&zlib_include_dir);
        build.define("HAVE_ZLIB", None);
    }

    if cfg!(feature = "zstd") {
        let zstd_include_dir = std::env::var_os("DEP_ZSTD_INCLUDE").unwrap();
        build.include(&zstd_include_dir);
        build.define("HAVE_ZSTD", None);
    }
    if cfg!(feature = "snappy") {
        let snappy_include_dir = std::env::var_os("DEP_SNAPPY_INCLUDE").unwrap();
        build.include(&snappy_include_dir);
        build.define("HAVE_SNAPPY", None);
    }

    let linklib = if cfg!(target_env = "msvc") {
        "libblosc"
    } else {
        "blosc"
    };
    build.compile(linklib);
}
