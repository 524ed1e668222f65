// Interop client: Go's github.com/coreos/go-oidc with golang.org/x/oauth2, the client stack of
// oauth2-proxy, Argo CD and Gitea, against a running `wecom-oidc demo --auto-login USER`.
//
// Built by tests/interop/run from Debian's packages (golang-github-coreos-go-oidc-dev,
// golang-golang-x-oauth2-dev) in GOPATH mode, offline. It runs the code flow as a browser
// without JavaScript would (following redirects by hand, keeping cookies), with state, nonce
// and PKCE S256 (built by hand: this x/oauth2 predates its PKCE helpers), verifies the id_token
// with go-oidc's verifier, reads userinfo, and then applies oauth2-proxy's session rules
// (providers/provider_data.go buildSessionFromClaims, providers/oidc.go EnrichSession) to the
// claims with the email claim the `wecom-oidc snippet oauth2-proxy` block chooses, to show
// whether that member would be let in. Negative checks: a tampered signature and a wrong
// audience are rejected. Last: RP-initiated logout redirects back with the state.
//
// Every check prints `ok - ...` / `not ok - ...` / `skip - ...`; the last line is
// `RESULT passed=N failed=M skipped=K`, as for openid-client.mjs.
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"time"

	oidc "github.com/coreos/go-oidc"
	"golang.org/x/oauth2"
)

var passed, failed, skipped int

func ok(cond bool, name string, detail string) bool {
	if cond {
		passed++
		fmt.Printf("ok - [go-oidc %s] %s\n", *label, name)
	} else {
		failed++
		fmt.Printf("not ok - [go-oidc %s] %s: %s\n", *label, name, detail)
	}
	return cond
}

func skip(name, why string) {
	skipped++
	fmt.Printf("skip - [go-oidc %s] %s: SKIPPED (%s)\n", *label, name, why)
}

var (
	issuer       = flag.String("issuer", "", "the provider's issuer")
	clientID     = flag.String("client-id", "", "client id")
	secretEnv    = flag.String("secret-env", "", "environment variable holding the client secret")
	redirectURI  = flag.String("redirect-uri", "", "registered redirect URI (never fetched)")
	logoutURI    = flag.String("post-logout-redirect-uri", "", "registered post_logout_redirect_uri")
	username     = flag.String("username", "", "the member the demo logs in")
	expectEmail  = flag.String("expect-email", "absent", "absent, present, or present-or-skip")
	emailClaim   = flag.String("oauth2-proxy-email-claim", "preferred_username", "oauth2-proxy's oidc_email_claim")
	allowUnverif = flag.Bool("oauth2-proxy-allow-unverified", false, "oauth2-proxy's insecure_oidc_allow_unverified_email")
	label        = flag.String("label", "", "name shown in every check")
)

func random(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// browse follows redirects by hand from start until one points at the redirect URI, and returns
// that URL: the authorization response the application's callback would receive.
func browse(client *http.Client, start string) (*url.URL, error) {
	next := start
	for i := 0; i < 20; i++ {
		resp, err := client.Get(next)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode < 300 || resp.StatusCode > 399 || loc == "" {
			return nil, fmt.Errorf("%s answered %d without a redirect", next, resp.StatusCode)
		}
		u, err := resp.Request.URL.Parse(loc)
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(u.String(), *redirectURI) {
			return u, nil
		}
		next = u.String()
	}
	return nil, fmt.Errorf("too many redirects")
}

// The claims oauth2-proxy and the guides read.
type claims struct {
	Sub               string   `json:"sub"`
	Nonce             string   `json:"nonce"`
	Name              string   `json:"name"`
	PreferredUsername string   `json:"preferred_username"`
	Email             *string  `json:"email"`
	EmailVerified     *bool    `json:"email_verified"`
	Groups            []string `json:"groups"`
	Phone             *string  `json:"phone_number"`
	Address           any      `json:"address"`
}

// oauth2ProxyAdmits applies oauth2-proxy v7.15's rules to the id_token claims: the session's
// email comes from oidc_email_claim; with the default claim "email", an email_verified that is
// present and false refuses the login unless insecure_oidc_allow_unverified_email; an empty
// session email refuses it ("neither the id_token nor the profileURL set an email").
func oauth2ProxyAdmits(raw map[string]any) (bool, string) {
	email, _ := raw[*emailClaim].(string)
	if *emailClaim == "email" && !*allowUnverif {
		if v, present := raw["email_verified"]; present {
			if b, _ := v.(bool); !b {
				return false, fmt.Sprintf("email in id_token (%s) isn't verified", email)
			}
		}
	}
	if email == "" {
		return false, "neither the id_token nor the profileURL set an email"
	}
	return true, email
}

func main() {
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	defer func() {
		fmt.Printf("RESULT passed=%d failed=%d skipped=%d\n", passed, failed, skipped)
		if failed > 0 {
			os.Exit(1)
		}
	}()

	provider, err := oidc.NewProvider(ctx, *issuer)
	if !ok(err == nil, "discovery: NewProvider checks the issuer of the discovery document", fmt.Sprint(err)) {
		return
	}
	var meta struct {
		ScopesSupported []string `json:"scopes_supported"`
		EndSession      string   `json:"end_session_endpoint"`
	}
	_ = provider.Claims(&meta)
	hasGroups := false
	for _, s := range meta.ScopesSupported {
		hasGroups = hasGroups || s == "groups"
	}
	ok(hasGroups, "discovery lists groups in scopes_supported", fmt.Sprint(meta.ScopesSupported))

	conf := oauth2.Config{
		ClientID:     *clientID,
		ClientSecret: os.Getenv(*secretEnv),
		Endpoint:     provider.Endpoint(),
		RedirectURL:  *redirectURI,
		Scopes:       []string{oidc.ScopeOpenID, "profile", "email", "groups"},
	}
	state, nonce, verifier := random(16), random(16), random(32)
	sum := sha256.Sum256([]byte(verifier))
	authURL := conf.AuthCodeURL(state,
		oidc.Nonce(nonce),
		oauth2.SetAuthURLParam("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:])),
		oauth2.SetAuthURLParam("code_challenge_method", "S256"))

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{
		Jar:           jar,
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	back, err := browse(browser, authURL)
	if !ok(err == nil, "code flow: the browser comes back to the redirect URI", fmt.Sprint(err)) {
		return
	}
	q := back.Query()
	ok(q.Get("state") == state, "authorization response carries our state", q.Get("state"))
	ok(q.Get("iss") == *issuer, "authorization response carries iss (RFC 9207)", q.Get("iss"))

	token, err := conf.Exchange(ctx, q.Get("code"), oauth2.SetAuthURLParam("code_verifier", verifier))
	if !ok(err == nil, "token exchange with client_secret_basic and the PKCE verifier", fmt.Sprint(err)) {
		return
	}
	rawID, _ := token.Extra("id_token").(string)
	idToken, err := provider.Verifier(&oidc.Config{ClientID: *clientID}).Verify(ctx, rawID)
	if !ok(err == nil, "go-oidc verifies the id_token (signature from jwks_uri, iss, aud, exp)", fmt.Sprint(err)) {
		return
	}
	var c claims
	var raw map[string]any
	_ = idToken.Claims(&c)
	_ = idToken.Claims(&raw)
	ok(c.Nonce == nonce, "id_token nonce is ours", c.Nonce)
	ok(c.Sub == *username && c.PreferredUsername == *username,
		"sub and preferred_username are the WeCom userid "+*username, c.Sub+" / "+c.PreferredUsername)
	ok(len(c.Groups) > 0, "groups claim: "+strings.Join(c.Groups, ","), "absent")
	ok(c.Phone == nil && c.Address == nil, "no phone_number or address without their scopes", "present")
	switch {
	case c.Email == nil && *expectEmail == "present-or-skip":
		skip("a member with an e-mail address", "the demo gave "+*username+" no address: the demo does not take [wecom] e-mail settings")
		return
	case c.Email == nil:
		ok(*expectEmail == "absent", "member without an e-mail: no email claim", "expected one")
		ok(c.EmailVerified == nil, "no email_verified without an address", "present")
	default:
		ok(*expectEmail != "absent", "member with an e-mail: email = "+*c.Email, "expected none")
		ok(c.EmailVerified != nil, "email_verified accompanies the address", "absent")
	}

	admitted, why := oauth2ProxyAdmits(raw)
	ok(admitted, fmt.Sprintf("oauth2-proxy rules (oidc_email_claim=%s, insecure_oidc_allow_unverified_email=%v) admit the member as %q",
		*emailClaim, *allowUnverif, why), why)
	if c.Email == nil && *emailClaim == "preferred_username" {
		// The default configuration refuses the same member: the snippet's choice matters.
		*emailClaim = "email"
		refused, why := oauth2ProxyAdmits(raw)
		ok(!refused, "oauth2-proxy defaults (oidc_email_claim=email) would refuse this member: "+why, "admitted")
		*emailClaim = "preferred_username"
	}

	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(token))
	ok(err == nil && info.Subject == c.Sub, "userinfo: same sub as the id_token", fmt.Sprint(err))

	// A tampered signature and a wrong audience are caught.
	parts := strings.Split(rawID, ".")
	sig := []byte(parts[2])
	if sig[0] == 'A' {
		sig[0] = 'B'
	} else {
		sig[0] = 'A'
	}
	_, err = provider.Verifier(&oidc.Config{ClientID: *clientID}).Verify(ctx, parts[0]+"."+parts[1]+"."+string(sig))
	ok(err != nil, "a tampered signature is rejected", "accepted")
	_, err = provider.Verifier(&oidc.Config{ClientID: "another-client"}).Verify(ctx, rawID)
	ok(err != nil, "an id_token for another client is rejected", "accepted")

	// RP-initiated logout back to a registered URI, with state (RP-Initiated Logout 1.0 §3).
	if *logoutURI == "" || meta.EndSession == "" {
		skip("RP-initiated logout", "no post_logout_redirect_uri given or no end_session_endpoint")
		return
	}
	logoutState := random(8)
	v := url.Values{
		"id_token_hint":            {rawID},
		"post_logout_redirect_uri": {*logoutURI},
		"state":                    {logoutState},
	}
	resp, err := browser.Get(meta.EndSession + "?" + v.Encode())
	if ok(err == nil, "logout request", fmt.Sprint(err)) {
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		ok(resp.StatusCode/100 == 3 && loc != nil && strings.HasPrefix(loc.String(), *logoutURI) &&
			loc.Query().Get("state") == logoutState,
			"logout with id_token_hint redirects to the registered post_logout_redirect_uri with state",
			fmt.Sprintf("%d %s", resp.StatusCode, resp.Header.Get("Location")))
	}
}
