# Three stages: `target: runtime` builds the first two and leaves `test` out.
ARG BASE_IMAGE=seatrial/busybox

FROM ${BASE_IMAGE} AS pages
RUN mkdir -p /www && echo '<h1>built in a stage</h1>' > /www/index.html

FROM ${BASE_IMAGE} AS runtime
COPY --from=pages /www /www
EXPOSE 8080
CMD ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 8080 -h /www & wait"]

FROM runtime AS test
RUN test -s /www/index.html
