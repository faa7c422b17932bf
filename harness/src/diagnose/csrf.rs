//! A form refused for CSRF (Django's 403 "CSRF verification failed", Flask-WTF's 400 "The CSRF token is
//! missing"): what the request carried of the cookie and the token a CSRF check compares, and what to
//! send instead. The commonest mistake of a scenario that posts a form.

/// What a request carried that a CSRF check looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// The names of the cookies it carried.
    pub cookies: Vec<String>,
    /// Whether it carried a token: a `csrfmiddlewaretoken` / `csrf_token` field or an `X-CSRFToken` /
    /// `X-CSRF-Token` header.
    pub token: bool,
}

/// The field and header names that carry a CSRF token in Django and Flask-WTF.
pub const TOKEN_FIELDS: [&str; 2] = ["csrfmiddlewaretoken", "csrf_token"];
pub const TOKEN_HEADERS: [&str; 2] = ["x-csrftoken", "x-csrf-token"];

/// Why the server refused the request, when its answer says it was for CSRF.
pub fn refusal(status: u16, body: &str, sent: &Sent) -> Option<String> {
    if !matches!(status, 400 | 403) || !body.contains("CSRF") {
        return None;
    }
    let cookies = sent.cookies.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", ");
    Some(match (sent.cookies.is_empty(), sent.token) {
        (true, _) => "the server refused it for CSRF, and the request carried no cookie: the CSRF cookie comes \
                      with the answer that shows the form (GET it first, in the same scenario); `cookies: false` \
                      sends none"
            .to_owned(),
        // Django keeps the token in its `csrftoken` cookie, and takes it back in a field or a header.
        (false, false) if sent.cookies.iter().any(|c| c == "csrftoken") => format!(
            "the server refused it for CSRF: the request carried the cookies {cookies} but no CSRF token; save \
             it (`save: {{ csrf: {{ cookie: csrftoken }} }}`) and send it as the `csrfmiddlewaretoken` field or an \
             `X-CSRFToken` header (`\"${{csrf}}\"`)"
        ),
        // Elsewhere (Flask-WTF) the token is only in the page that shows the form.
        (false, false) => format!(
            "the server refused it for CSRF: the request carried the cookies {cookies} but no CSRF token; save it \
             from the page that shows the form (`save: {{ csrf: {{ regex: 'name=\"csrf_token\" value=\"([^\"]+)\"' }} }}`) \
             and send it back as that field or an `X-CSRFToken` header (`\"${{csrf}}\"`)"
        ),
        (false, true) => format!(
            "the server refused it for CSRF although the request carried the cookies {cookies} and a token: the \
             token may belong to another cookie (saved before the cookie changed), or the server checks the \
             `Origin`/`Referer` (HTTPS, `CSRF_TRUSTED_ORIGINS`)"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_the_request_lacked() {
        let page = "<h1>Forbidden <span>(403)</span></h1><p>CSRF verification failed. Request aborted.</p>";
        let none = refusal(403, page, &Sent::default()).unwrap();
        assert!(none.contains("carried no cookie"), "{none}");
        let cookie_only = Sent { cookies: vec!["csrftoken".into()], token: false };
        let said = refusal(403, page, &cookie_only).unwrap();
        assert!(said.contains("carried the cookies `csrftoken` but no CSRF token"), "{said}");
        assert_eq!(refusal(403, "forbidden", &cookie_only), None);
        assert_eq!(refusal(500, page, &cookie_only), None);
        assert!(
            refusal(400, "The CSRF token is missing.", &Sent { cookies: vec!["session".into()], token: true })
                .is_some()
        );
    }
}
