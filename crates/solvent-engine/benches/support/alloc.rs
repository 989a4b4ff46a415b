//! The allocator the `solvent` binary runs on (mimalloc), for every benchmark and example that
//! times the engine: the engine is timed as the product runs it.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
