//! The documentation's examples are real files, and real scenario files: every ```yaml block of
//! `docs/*.md` that starts with `# docs/examples/<name>.yaml` is that file, byte for byte; every scenario
//! file under `docs/examples/` is shown somewhere; and `seatrial check docs/examples` accepts them all,
//! without a warning. No engine needed (running them is `seatrial run docs/examples`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The first line of a block that shows an example file.
const MARKER: &str = "# docs/examples/";

/// The reference must show nothing but real files: every yaml block in it carries the marker.
const EVERY_BLOCK_IS_AN_EXAMPLE: &[&str] = &["scenario-format.md"];

fn root() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/..")).to_path_buf()
}

/// A fenced ```yaml block: where it starts (1-based line) and its lines, de-indented like the fence.
struct Block {
    line: usize,
    text: String,
}

fn yaml_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let indent = line.len() - line.trim_start().len();
        let Some(info) = line.trim_start().strip_prefix("```") else { continue };
        let fence_len = 3 + info.chars().take_while(|&c| c == '`').count();
        let info = info.trim_start_matches('`').trim();
        let mut body = Vec::new();
        for (_, inner) in lines.by_ref() {
            let trimmed = inner.trim_start();
            if trimmed.starts_with(&"`".repeat(fence_len)) && trimmed.trim_start_matches('`').trim().is_empty() {
                break;
            }
            let strip = inner.len() - trimmed.len();
            body.push(&inner[strip.min(indent)..]);
        }
        if info.split_whitespace().next() == Some("yaml") {
            blocks.push(Block { line: index + 1, text: body.join("\n") });
        }
    }
    blocks
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("readable docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files
}

/// Every file `seatrial check docs/examples` reads: `*.yaml` and `*.yml`, in every subfolder.
fn example_files(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("readable folder") {
        let path = entry.expect("readable entry").path();
        if path.is_dir() {
            example_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let relative = path.strip_prefix(root()).expect("below the root");
            out.insert(relative.to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn every_example_block_is_its_file_and_every_file_is_shown() {
    let root = root();
    let mut problems = Vec::new();
    let mut shown = BTreeSet::new();
    for md in markdown_files() {
        let name = md.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&md).expect("readable markdown");
        for block in yaml_blocks(&text) {
            let at = format!("docs/{name}:{}", block.line);
            let first = block.text.lines().next().unwrap_or_default();
            let Some(file) = first.strip_prefix(MARKER) else {
                if EVERY_BLOCK_IS_AN_EXAMPLE.contains(&name.as_str()) {
                    problems.push(format!("{at}: a yaml block must start with `{MARKER}<name>.yaml`"));
                }
                continue;
            };
            let relative = format!("docs/examples/{}", file.trim());
            let Ok(on_disk) = std::fs::read_to_string(root.join(&relative)) else {
                problems.push(format!("{at}: `{relative}` does not exist"));
                continue;
            };
            if on_disk.trim_end_matches('\n') != block.text.trim_end_matches('\n') {
                let line = on_disk
                    .lines()
                    .zip(block.text.lines())
                    .position(|(a, b)| a != b)
                    .map_or_else(|| "a line added or missing at the end".to_owned(), |i| format!("line {}", i + 1));
                problems.push(format!("{at}: the block differs from `{relative}` ({line})"));
            }
            shown.insert(relative);
        }
    }
    let mut files = BTreeSet::new();
    example_files(&root.join("docs/examples"), &mut files);
    for file in files.difference(&shown) {
        problems.push(format!("`{file}` is not shown in any ```yaml block of docs/*.md"));
    }
    assert!(problems.is_empty(), "the docs and their examples disagree:\n  {}", problems.join("\n  "));
}

#[test]
fn seatrial_check_accepts_every_example() {
    let output = Command::new(env!("CARGO_BIN_EXE_seatrial"))
        .args(["check", "docs/examples"])
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("the seatrial binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "`seatrial check docs/examples` exited {:?}\nstdout:\n{}\nstderr:\n{stderr}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
    );
    // Examples teach: not even a warning (an unused image, ...) belongs in them.
    assert!(stderr.trim().is_empty(), "`seatrial check docs/examples` warns:\n{stderr}");
}

#[test]
fn the_block_reader_finds_fenced_yaml() {
    let markdown = "text\n```yaml\n# docs/examples/a.yaml\nkey: 1\n```\n\n  ```yaml\n  x: 2\n  ```\n```text\nno\n```\n";
    let blocks = yaml_blocks(markdown);
    assert_eq!(blocks.len(), 2);
    assert_eq!((blocks[0].line, blocks[0].text.as_str()), (2, "# docs/examples/a.yaml\nkey: 1"));
    assert_eq!(blocks[1].text, "x: 2");
}
