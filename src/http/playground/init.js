// GraphiQL on the endpoint that served this page: queries and mutations over HTTP, and
// subscriptions over a WebSocket to the same path, wss:// when the page is https (so a
// TLS-terminating proxy needs no configuration). Runs inline; the page's
// Content-Security-Policy allows it by its sha256 (src/http/playground.rs).
(function () {
  var path = window.location.pathname;
  var url = window.location.origin + path;
  var scheme = window.location.protocol === 'https:' ? 'wss://' : 'ws://';
  var subscriptionUrl = scheme + window.location.host + path;
  var fetcher = GraphiQL.createFetcher({ url: url, subscriptionUrl: subscriptionUrl });
  ReactDOM.createRoot(document.getElementById('graphiql')).render(
    React.createElement(GraphiQL, { fetcher: fetcher, defaultEditorToolsVisibility: true })
  );
})();
