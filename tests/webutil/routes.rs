//! The routes the web server serves, read from the router's source (`src/web/mod.rs`,
//! `src/web/api.rs`) so tests that must cover every route — the route × principal
//! matrix, the path-traversal sweep — cannot miss one that is added later.

/// `(METHOD, path)` of every `.route(...)` in the router's source; the API's paths
/// get the `/api/v1` prefix the main router nests them under.
pub fn served_routes() -> Vec<(String, String)> {
    let main = include_str!("../../src/web/mod.rs");
    let api = include_str!("../../src/web/api.rs");
    // Routes can only come from `.route(...)`: the one `.nest` is the API, the one
    // `.merge` the pages router built in the same function; anything else would hide
    // routes from the scan below.
    let squeezed: String = main.split_whitespace().collect();
    let allowed = [(main, ".nest(", 1), (main, ".merge(", 1)];
    for (name, src) in [("mod.rs", main), ("api.rs", api)] {
        for how in [".route_service(", ".nest_service(", ".merge(", ".nest("] {
            let may = allowed
                .iter()
                .find(|(s, h, _)| std::ptr::eq(*s, src) && *h == how)
                .map_or(0, |(_, _, n)| *n);
            assert!(
                src.matches(how).count() <= may,
                "{name} builds routes with {how}: teach this test to read them"
            );
        }
    }
    assert!(
        squeezed.contains(".nest(\"/api/v1\",api::routes()"),
        "the API is nested under /api/v1"
    );
    let mut routes = routes_in(main, "");
    routes.extend(routes_in(api, "/api/v1"));
    routes
}

/// Scans `.route("PATH", get(..).post(..))` calls: the method names are the
/// identifiers called at the call's own nesting level.
fn routes_in(src: &str, prefix: &str) -> Vec<(String, String)> {
    const METHODS: [&str; 9] = [
        "get", "post", "put", "delete", "patch", "head", "options", "trace", "any",
    ];
    let mut out = Vec::new();
    for (start, _) in src.match_indices(".route(") {
        let args = &src[start + ".route(".len()..];
        let path = args
            .trim_start()
            .strip_prefix('"')
            .and_then(|s| s.split('"').next())
            .expect("a route's path is a string literal");
        let mut depth = 1;
        let mut end = 0;
        let bytes = args.as_bytes();
        let mut methods = Vec::new();
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'(' => {
                    if depth == 1 {
                        let ident: String = args[..i]
                            .chars()
                            .rev()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect::<Vec<_>>()
                            .into_iter()
                            .rev()
                            .collect();
                        assert!(
                            METHODS.contains(&ident.as_str()),
                            "route {path}: unknown method router {ident}()"
                        );
                        methods.push(ident.to_uppercase());
                    }
                    depth += 1;
                }
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        assert!(end > 0, "route {path}: unbalanced parentheses");
        assert!(!methods.is_empty(), "route {path}: no method");
        for m in methods {
            out.push((m, format!("{prefix}{path}")));
        }
    }
    out
}
