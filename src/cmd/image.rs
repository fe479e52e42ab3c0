//! `airlock image`: the OCI image of airlock itself, into a layout directory or an archive, so
//! it can be carried across the air gap and run from the private registry.

use crate::cli::ImageArgs;
use crate::cmd::pack::Output;
use crate::exit::Exit;

pub fn run(args: &ImageArgs) -> anyhow::Result<Exit> {
    let name = args
        .name
        .clone()
        .unwrap_or_else(crate::selfimage::default_name);
    let binaries = if args.binaries.is_empty() {
        vec![crate::selfimage::current_exe()?]
    } else {
        args.binaries.clone()
    };
    let image = crate::selfimage::SelfImage::build(&name, &binaries)?;
    let output = Output::prepare(&args.output)?;
    crate::registry::runtime()?.block_on(async {
        let layout = output.open().await?;
        let built = image.add_to(&layout).await;
        output.finish(&layout, built.is_ok()).await?;
        let desc = built?;
        // The reference on stdout, for scripts; what was built on stderr.
        println!("{}@{}", image.name(), desc.digest);
        eprintln!(
            "airlock: {}: {} binar{} in {}",
            image.name(),
            binaries.len(),
            if binaries.len() == 1 { "y" } else { "ies" },
            args.output.display()
        );
        Ok(Exit::Ok)
    })
}
