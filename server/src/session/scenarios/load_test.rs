//! The loader on small scenario folders made in a temporary folder. One is
//! modelled on the shape of Killercoda's public Docker scenarios (intro with
//! background and foreground scripts, steps with `verify`, a solution in
//! `<details>`, assets with `chmod`), one on their public courses example
//! (`structure.json` with overrides and a reference to another folder).

use std::path::Path;

use super::*;

fn write(root: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

const DOCKER_INDEX: &str = r#"{
  "title": "Bind mounts",
  "description": "Serve a folder of the host from a container",
  "difficulty": "easy",
  "details": {
    "intro": {
      "text": "intro.md",
      "background": "init/background.sh",
      "foreground": "init/foreground.sh"
    },
    "steps": [
      {"title": "Start a container", "text": "step1/text.md", "verify": "step1/verify.sh"},
      {"title": "Change a file", "text": "step2/text.md", "verify": "step2/verify.sh"}
    ],
    "finish": {"text": "finish.md"},
    "assets": {
      "host01": [
        {"file": "setup.sh", "target": "/ks", "chmod": "+x"},
        {"file": "solution.sh", "target": "/var/run/kc-internal", "chmod": "+x"}
      ]
    }
  },
  "backend": {"imageid": "ubuntu"}
}"#;

const DOCKER_STEP1: &str = "
Start a container named `web` from `nginx:alpine` with `/root/site` mounted
at `/usr/share/nginx/html`, port 80 published.

<details><summary>Solution</summary>

```plain
docker run -d -p 80:80 -v /root/site:/usr/share/nginx/html --name web nginx:alpine
```{{exec}}

Then look: `curl localhost`{{exec}} or open [the site]({{TRAFFIC_HOST1_80}}).

</details>
";

fn docker_scenario(root: &Path) {
    write(
        root,
        &[
            ("bind-mounts/index.json", DOCKER_INDEX),
            (
                "bind-mounts/intro.md",
                "Containers can see **host** folders.",
            ),
            (
                "bind-mounts/init/background.sh",
                "#!/bin/bash\n/ks/setup.sh\n",
            ),
            (
                "bind-mounts/init/foreground.sh",
                "#!/bin/bash\nwhile [ ! -f /tmp/ready ]; do sleep 1; done\n",
            ),
            ("bind-mounts/step1/text.md", DOCKER_STEP1),
            (
                "bind-mounts/step1/verify.sh",
                "#!/bin/bash\ndocker ps | grep -q web\n",
            ),
            (
                "bind-mounts/step2/text.md",
                "Edit `/root/site/index.html`{{copy}}.",
            ),
            (
                "bind-mounts/step2/verify.sh",
                "#!/bin/bash\ncurl -s localhost | grep -q hello\n",
            ),
            ("bind-mounts/finish.md", "Done."),
            ("bind-mounts/assets/setup.sh", "mkdir -p /root/site\n"),
            ("bind-mounts/assets/solution.sh", "docker run -d web\n"),
        ],
    );
}

#[test]
fn a_docker_scenario_loads() {
    let dir = tempfile::tempdir().unwrap();
    docker_scenario(dir.path());
    let catalog = load_dir(dir.path(), &[]).unwrap();
    assert_eq!(catalog.scenarios.len(), 1);
    assert!(catalog.courses.is_empty());
    assert_eq!(
        catalog.top,
        [Item {
            kind: ItemKind::Scenario,
            id: "bind-mounts".into(),
            title: None,
            description: None
        }]
    );
    let s = catalog.scenario("bind-mounts").unwrap();
    assert_eq!(s.title, "Bind mounts");
    assert_eq!(s.hostnames, ["node1"]);
    assert_eq!(s.profile, Some(sandbox::Profile::Nesting));
    assert_eq!(s.layout, Layout::Terminal);
    let intro = s.intro.as_ref().unwrap();
    assert_eq!(
        intro.html,
        "<p>Containers can see <strong>host</strong> folders.</p>\n"
    );
    assert!(intro
        .background
        .as_deref()
        .unwrap()
        .contains("/ks/setup.sh"));
    assert!(intro.foreground.as_deref().unwrap().contains("/tmp/ready"));
    assert_eq!(s.steps.len(), 2);
    let step1 = &s.steps[0];
    assert_eq!(step1.title.as_deref(), Some("Start a container"));
    assert!(step1.verify.as_deref().unwrap().contains("grep -q web"));
    assert!(
        step1.html.contains("<details><summary>Solution</summary>"),
        "{}",
        step1.html
    );
    assert!(
        step1
            .html
            .contains("<pre class=\"exec\"><code class=\"language-plain\">docker run -d"),
        "{}",
        step1.html
    );
    assert!(
        step1
            .html
            .contains("<code class=\"exec\">curl localhost</code>"),
        "{}",
        step1.html
    );
    assert!(
        step1.html.contains("<code class=\"copy\">web</code>"),
        "{}",
        step1.html
    );
    assert!(
        step1.html.contains("data-host=\"1\" data-port=\"80\""),
        "{}",
        step1.html
    );
    assert!(s.steps[1]
        .html
        .contains("<code class=\"copy\">/root/site/index.html</code>"));
    assert_eq!(s.finish.as_ref().unwrap().html, "<p>Done.</p>\n");
    let targets: Vec<(&str, &str, Option<&str>)> = s
        .assets
        .iter()
        .map(|a| (a.hostname.as_str(), a.target.as_str(), a.chmod.as_deref()))
        .collect();
    assert_eq!(
        targets,
        [
            ("node1", "/ks/setup.sh", Some("+x")),
            ("node1", "/var/run/kc-internal/solution.sh", Some("+x"))
        ]
    );
    assert!(s.assets[0].source.ends_with("bind-mounts/assets/setup.sh"));
}

#[test]
fn courses_by_folder_and_by_structure_json() {
    let dir = tempfile::tempdir().unwrap();
    let index = |title: &str, image: &str| {
        format!(
            r#"{{"title": "{title}", "description": "about {title}", "backend": {{"imageid": "{image}"}}}}"#
        )
    };
    write(
        dir.path(),
        &[
            (
                "structure.json",
                r#"{"items": [{"path": "scenario2"}, {"path": "course1", "title": "Course ONE"}, {"path": "course2"}]}"#,
            ),
            ("scenario1/index.json", &index("one", "ubuntu")),
            ("scenario2/index.json", &index("two", "ubuntu")),
            ("course1/README.md", "a course by folder"),
            (
                "course1/scenario1/index.json",
                &index("c1s1", "ubuntu20.04"),
            ),
            (
                "course1/scenario2/index.json",
                &index("c1s2", "kubernetes-kubeadm-2nodes"),
            ),
            (
                "course2/structure.json",
                r#"{"title": "Course TWO", "description": "by structure",
                    "items": [{"path": "scenario3"}, {"path": "../course1/scenario2", "title": "Renamed"}]}"#,
            ),
            (
                "course2/scenario3/index.json",
                &index("c2s3", "kubernetes-kubeadm-1node"),
            ),
            (
                "course2/category1/scenarioB/index.json",
                &index("ignored", "ubuntu"),
            ),
        ],
    );
    let catalog = load_dir(dir.path(), &[]).unwrap();
    // scenario1 and course2/category1 are not listed: not loaded.
    let ids: Vec<&str> = catalog.scenarios.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "course1/scenario1",
            "course1/scenario2",
            "course2/scenario3",
            "scenario2"
        ]
    );
    let top: Vec<(&str, Option<&str>)> = catalog
        .top
        .iter()
        .map(|i| (i.id.as_str(), i.title.as_deref()))
        .collect();
    assert_eq!(
        top,
        [
            ("scenario2", None),
            ("course1", Some("Course ONE")),
            ("course2", None)
        ]
    );
    let course1 = catalog.course("course1").unwrap();
    assert_eq!(course1.title, "course1");
    assert_eq!(course1.items.len(), 2);
    let course2 = catalog.course("course2").unwrap();
    assert_eq!(
        (course2.title.as_str(), course2.description.as_str()),
        ("Course TWO", "by structure")
    );
    assert_eq!(course2.items[1].id, "course1/scenario2");
    assert_eq!(course2.items[1].title.as_deref(), Some("Renamed"));
    assert_eq!(
        catalog.scenario("course1/scenario2").unwrap().hostnames,
        ["node1", "node2"]
    );
    assert!(check_limits(dir.path(), &catalog, 2).is_ok());
    let e = check_limits(dir.path(), &catalog, 1)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("course1/scenario2/index.json") && e.contains("--max-instances"),
        "{e}"
    );
}

/// Files written over the Docker scenario, the file an error must name,
/// and the problem it must give.
type Case<'a> = (Vec<(&'a str, String)>, &'a str, &'a str);

/// `files` written over the Docker scenario; the error of loading it.
fn error_with(files: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    docker_scenario(dir.path());
    write(dir.path(), files);
    load_dir(dir.path(), &[]).unwrap_err().to_string()
}

#[test]
fn errors_name_the_file_and_the_problem() {
    let index = "bind-mounts/index.json";
    let cases: Vec<Case> = vec![
        (vec![(index, "{".into())], "index.json", "EOF"),
        (
            vec![(
                index,
                DOCKER_INDEX.replace("\"title\": \"Bind mounts\",", ""),
            )],
            "index.json",
            "title",
        ),
        (
            vec![(
                index,
                DOCKER_INDEX.replace("\"verify\": \"step1", "\"verfiy\": \"step1"),
            )],
            "index.json",
            "verfiy",
        ),
        (
            vec![(
                index,
                DOCKER_INDEX.replace("step2/verify.sh", "step2/missing.sh"),
            )],
            "index.json",
            "details.steps[1].verify \"step2/missing.sh\"",
        ),
        (
            vec![(index, DOCKER_INDEX.replace("intro.md", "../../etc/passwd"))],
            "index.json",
            "'..'",
        ),
        (
            vec![(index, DOCKER_INDEX.replace("intro.md", "/etc/passwd"))],
            "index.json",
            "inside the scenario",
        ),
        (
            vec![(index, DOCKER_INDEX.replace("\"ubuntu\"", "\"windows-11\""))],
            "index.json",
            "windows-11",
        ),
        (
            vec![(index, DOCKER_INDEX.replace("host01", "host02"))],
            "index.json",
            "host02",
        ),
        (
            vec![(index, DOCKER_INDEX.replace("solution.sh\"", "nothing.sh\""))],
            "index.json",
            "no file of assets/",
        ),
        (
            vec![(
                "structure.json",
                r#"{"items": [{"path": "../outside"}]}"#.into(),
            )],
            "structure.json",
            "leaves",
        ),
        (
            vec![("structure.json", r#"{"items": [{"path": "nope"}]}"#.into())],
            "structure.json",
            "neither",
        ),
        (
            vec![("bad name/index.json", DOCKER_INDEX.into())],
            "bad name",
            "folder name",
        ),
    ];
    for (files, file, problem) in cases {
        let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
        let e = error_with(&files);
        assert!(e.contains(file) && e.contains(problem), "{files:?}: {e}");
    }
}

#[test]
fn a_symbolic_link_out_of_the_scenario_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    docker_scenario(dir.path());
    let intro = dir.path().join("bind-mounts/intro.md");
    std::fs::remove_file(&intro).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", &intro).unwrap();
    let e = load_dir(dir.path(), &[]).unwrap_err().to_string();
    assert!(e.contains("leads out"), "{e}");
}

#[test]
fn circles_between_courses_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            ("a/structure.json", r#"{"items": [{"path": "../b"}]}"#),
            ("b/structure.json", r#"{"items": [{"path": "../a"}]}"#),
        ],
    );
    let e = load_dir(dir.path(), &[]).unwrap_err().to_string();
    assert!(e.contains("lead back"), "{e}");
}

#[test]
fn katacoda_names_and_the_ide_layout() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "s/index.json",
                r#"{"title": "t", "details": {"steps": [{"text": "a.md", "courseData": "bg.sh", "code": "fg.sh", "answer": "x.md"}]},
                   "interface": {"layout": "ide"}, "environment": {"uilayout": "terminal"}}"#,
            ),
            ("s/a.md", "`ls`{{execute}}"),
            ("s/bg.sh", "bg"),
            ("s/fg.sh", "fg"),
        ],
    );
    let catalog = load_dir(dir.path(), &[]).unwrap();
    let s = catalog.scenario("s").unwrap();
    assert_eq!(s.layout, Layout::Ide);
    assert_eq!(s.imageid, "ubuntu");
    assert_eq!(s.steps[0].background.as_deref(), Some("bg"));
    assert_eq!(s.steps[0].foreground.as_deref(), Some("fg"));
    assert_eq!(s.steps[0].html, "<p><code class=\"exec\">ls</code></p>\n");
}

#[test]
fn a_scenario_folder_given_itself_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    docker_scenario(dir.path());
    let e = load_dir(&dir.path().join("bind-mounts"), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("folder above"), "{e}");
}
