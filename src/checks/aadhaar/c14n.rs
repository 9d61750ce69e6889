//! XML canonicalisation (C14N 1.0, inclusive or exclusive, with or without comments)
//! of a node and its subtree, as the signature's digests need it.

use super::*;

pub(super) const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

#[derive(Debug, Clone)]
pub(super) struct C14nAlg {
    pub exclusive: bool,
    pub with_comments: bool,
    /// Exclusive C14N InclusiveNamespaces PrefixList ("" = default).
    pub inclusive_prefixes: Vec<String>,
}

/// Canonical XML 1.0 (inclusive) or Exclusive XML Canonicalization 1.0 of
/// the document (`node` = root) or of the subtree at element `node`,
/// leaving out the subtree `skip` (the enveloped signature).
pub(super) fn canonicalize(
    node: Node,
    alg: &C14nAlg,
    with_comments: bool,
    skip: Option<NodeId>,
) -> String {
    let mut c = Canon {
        input: node.document().input_text(),
        alg,
        with_comments,
        skip,
        out: String::new(),
    };
    if node.is_root() {
        let mut after_root = false;
        for child in node.children() {
            match child.node_type() {
                NodeType::Element => {
                    c.element(child, &BTreeMap::new(), true);
                    after_root = true;
                }
                NodeType::Comment | NodeType::PI => {
                    if child.is_comment() && !with_comments {
                        continue;
                    }
                    if after_root {
                        c.out.push('\n');
                    }
                    c.leaf(child);
                    if !after_root {
                        c.out.push('\n');
                    }
                }
                _ => {}
            }
        }
    } else {
        c.element(node, &BTreeMap::new(), true);
    }
    c.out
}

pub(super) struct Canon<'c> {
    input: &'c str,
    alg: &'c C14nAlg,
    with_comments: bool,
    skip: Option<NodeId>,
    out: String,
}

/// prefix ("" = default namespace) -> namespace URI, as rendered so far.
type NsContext = BTreeMap<String, String>;

impl Canon<'_> {
    fn element_qname(&self, el: Node) -> String {
        let src = self.input.get(el.range()).unwrap_or("");
        src.trim_start_matches('<')
            .split(|c: char| c.is_whitespace() || c == '/' || c == '>')
            .next()
            .unwrap_or("")
            .to_string()
    }

    fn element(&mut self, el: Node, parent_ctx: &NsContext, apex: bool) {
        let qname = self.element_qname(el);
        let el_prefix = qname.split_once(':').map_or("", |(p, _)| p).to_string();

        let mut in_scope = NsContext::new();
        for ns in el.namespaces() {
            if ns.uri() == XML_NS {
                continue;
            }
            let prefix = ns.name().unwrap_or("");
            if prefix.is_empty() && ns.uri().is_empty() {
                continue; // xmlns="" = no default namespace
            }
            in_scope.insert(prefix.to_string(), ns.uri().to_string());
        }

        // Attributes: (namespace URI, local name, qname, value).
        let mut attrs: Vec<(String, String, String, String)> = el
            .attributes()
            .map(|a| {
                let qn = self
                    .input
                    .get(a.range_qname())
                    .unwrap_or(a.name())
                    .to_string();
                (
                    a.namespace().unwrap_or("").to_string(),
                    a.name().to_string(),
                    qn,
                    a.value().to_string(),
                )
            })
            .collect();
        if apex && !self.alg.exclusive {
            // Inclusive C14N of a subset: inherit xml:* attributes.
            for anc in el.ancestors().skip(1).filter(|n| n.is_element()) {
                for a in anc.attributes().filter(|a| a.namespace() == Some(XML_NS)) {
                    if !attrs.iter().any(|x| x.0 == XML_NS && x.1 == a.name()) {
                        attrs.push((
                            XML_NS.to_string(),
                            a.name().to_string(),
                            format!("xml:{}", a.name()),
                            a.value().to_string(),
                        ));
                    }
                }
            }
        }
        attrs.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));

        // Which namespace declarations to consider.
        let mut candidates: Vec<String> = Vec::new();
        if self.alg.exclusive {
            candidates.push(el_prefix.clone());
            for (_, _, qn, _) in &attrs {
                if let Some((p, _)) = qn.split_once(':') {
                    if p != "xml" {
                        candidates.push(p.to_string());
                    }
                }
            }
            for p in &self.alg.inclusive_prefixes {
                if p.is_empty() || in_scope.contains_key(p) {
                    candidates.push(p.clone());
                }
            }
        } else {
            candidates.push(String::new());
            candidates.extend(in_scope.keys().cloned());
        }
        candidates.sort();
        candidates.dedup();

        let mut ctx = parent_ctx.clone();
        let mut decls: Vec<(String, String)> = Vec::new();
        for p in candidates {
            let current = in_scope.get(&p).map(String::as_str).unwrap_or("");
            let rendered = parent_ctx.get(&p).map(String::as_str).unwrap_or("");
            let emit = if p.is_empty() {
                current != rendered
            } else {
                in_scope.contains_key(&p) && parent_ctx.get(&p).map(String::as_str) != Some(current)
            };
            if emit {
                ctx.insert(p.clone(), current.to_string());
                decls.push((p, current.to_string()));
            }
        }

        self.out.push('<');
        self.out.push_str(&qname);
        for (p, uri) in &decls {
            if p.is_empty() {
                self.out.push_str(" xmlns=\"");
            } else {
                self.out.push_str(" xmlns:");
                self.out.push_str(p);
                self.out.push_str("=\"");
            }
            escape_attr(&mut self.out, uri);
            self.out.push('"');
        }
        for (_, _, qn, value) in &attrs {
            self.out.push(' ');
            self.out.push_str(qn);
            self.out.push_str("=\"");
            escape_attr(&mut self.out, value);
            self.out.push('"');
        }
        self.out.push('>');

        for child in el.children() {
            if Some(child.id()) == self.skip {
                continue;
            }
            match child.node_type() {
                NodeType::Element => self.element(child, &ctx, false),
                NodeType::Text => escape_text(&mut self.out, child.text().unwrap_or("")),
                NodeType::Comment if self.with_comments => self.leaf(child),
                NodeType::PI => self.leaf(child),
                _ => {}
            }
        }

        self.out.push_str("</");
        self.out.push_str(&qname);
        self.out.push('>');
    }

    /// Comment or processing instruction.
    fn leaf(&mut self, node: Node) {
        if node.is_comment() {
            self.out.push_str("<!--");
            self.out.push_str(node.text().unwrap_or(""));
            self.out.push_str("-->");
        } else if let Some(pi) = node.pi() {
            self.out.push_str("<?");
            self.out.push_str(pi.target);
            if let Some(v) = pi.value.filter(|v| !v.is_empty()) {
                self.out.push(' ');
                self.out.push_str(v);
            }
            self.out.push_str("?>");
        }
    }
}

pub(super) fn escape_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}

pub(super) fn escape_attr(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c => out.push(c),
        }
    }
}
