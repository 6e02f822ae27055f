use clap::Parser;
#[derive(Parser)]
struct A {
    #[command(flatten)]
    a: hotspot_cli::accuracy::AccuracyArgs,
}
fn main() -> anyhow::Result<()> {
    hotspot_cli::accuracy::run(A::parse().a)
}
