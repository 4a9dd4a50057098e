„¢bf¤kind¤data¤metaƒ¤task§hostile¥vocab
£ctx§lineage…¤name§tr