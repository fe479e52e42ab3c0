//! Images named in shell text: `docker run IMAGE` / `docker pull IMAGE` (and podman/nerdctl) in
//! a container's command or script, pulled at run time by a Docker-in-Docker daemon — not by the
//! kubelet, so no pod spec names them. An image the same text builds (`docker build -t NAME`) is
//! local and left out.

use std::ops::Range;

/// Flags of `docker run` that take a value as the next word.
const VALUE_FLAGS: &[&str] = &[
    "-e",
    "--env",
    "-v",
    "--volume",
    "-p",
    "--publish",
    "--name",
    "-w",
    "--workdir",
    "-u",
    "--user",
    "--entrypoint",
    "--network",
    "--net",
    "--mount",
    "--platform",
    "-l",
    "--label",
    "--env-file",
    "-h",
    "--hostname",
    "--add-host",
    "--cpus",
    "-m",
    "--memory",
    "--device",
    "--pull",
    "--restart",
    "--cap-add",
    "--cap-drop",
    "--security-opt",
    "--tmpfs",
    "--shm-size",
    "--ulimit",
    "--log-driver",
];

/// Byte ranges of the images a shell text runs or pulls with a container CLI.
pub(crate) fn run_images(text: &str) -> Vec<Range<usize>> {
    let words = words(text);
    let built: Vec<&str> = built_tags(&words);
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let cli = matches!(w.1, "docker" | "podman" | "nerdctl");
        let verb = words.get(i + 1).map(|w| w.1);
        if !cli || !matches!(verb, Some("run" | "pull")) {
            continue;
        }
        let mut j = i + 2;
        while let Some(&(_, word)) = words.get(j) {
            if !word.starts_with('-') {
                break;
            }
            j += if VALUE_FLAGS.contains(&word) { 2 } else { 1 };
        }
        if let Some((range, word)) = words.get(j) {
            let word = word.trim_end_matches([';', '&', '|', ')']);
            if !built.contains(&word) && imgref::Reference::parse(word).is_ok() {
                out.push(range.start..range.start + word.len());
            }
        }
    }
    out
}

/// Names given to images the text builds (`docker build -t NAME`, `--tag NAME`, `--tag=NAME`).
fn built_tags<'a>(words: &[(Range<usize>, &'a str)]) -> Vec<&'a str> {
    let mut tags = Vec::new();
    for (i, (_, w)) in words.iter().enumerate() {
        if let Some(tag) = w.strip_prefix("--tag=") {
            tags.push(tag);
        } else if matches!(*w, "-t" | "--tag")
            && let Some((_, next)) = words.get(i + 1)
        {
            tags.push(next);
        }
    }
    tags
}

/// Whitespace-separated words with their byte ranges (quotes are not interpreted: an image name
/// never needs them).
fn words(text: &str) -> Vec<(Range<usize>, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((s..i, &text[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::run_images;

    fn images(text: &str) -> Vec<&str> {
        run_images(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn run_and_pull_with_flags_but_not_local_builds() {
        assert_eq!(
            images("until docker ps; do sleep 3; done; docker run --rm debian:latest cat /x"),
            ["debian:latest"]
        );
        assert_eq!(
            images("docker run -e A=1 -v /a:/b busybox echo hello"),
            ["busybox"]
        );
        assert_eq!(
            images("docker pull quay.io/x/y:1\npodman run --name t alpine:3"),
            ["quay.io/x/y:1", "alpine:3"]
        );
        assert!(images("docker build -t hello .\ndocker run hello").is_empty());
        assert!(images("docker ps; echo docker run").is_empty());
        assert!(images("docker run $(params.IMAGE)").is_empty());
    }
}
